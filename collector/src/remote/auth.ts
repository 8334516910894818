import { createHash, timingSafeEqual } from 'node:crypto'

/** Failures from one client before its further failures are slowed down. */
export const FREE_FAILURES = 5
export const FIRST_DELAY_MS = 100
export const MAX_DELAY_MS = 5000
/** A client that has not failed for this long starts afresh. */
const FORGET_AFTER_MS = 15 * 60_000
/** Most clients remembered; the oldest are forgotten first, so a scan cannot grow memory. */
const MAX_CLIENTS = 10_000

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest()

/**
 * Checks `Authorization: Bearer <token>`. Both sides are hashed first, so the
 * comparison takes the same time whatever the token's length or content.
 */
export class TokenCheck {
  private readonly expected: Buffer

  constructor(token: string) {
    this.expected = digest(token)
  }

  /** Why a request is refused, or undefined when its token is right. */
  refusal(authorization: string | undefined): string | undefined {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '')
    if (match === null) return 'missing bearer token: send "Authorization: Bearer <token>"'
    return timingSafeEqual(digest(match[1]!), this.expected) ? undefined : 'wrong token'
  }
}

interface Failures {
  count: number
  last: number
}

/**
 * Slows down guessing: per client IP, after FREE_FAILURES failures each
 * further failure is answered after a delay doubling from 100 ms to 5 s.
 * A success resets the client.
 */
export class FailureThrottle {
  private readonly clients = new Map<string, Failures>()

  /** Counts a failure; returns how long to wait before answering it, in ms. */
  fail(ip: string, now = Date.now()): number {
    let entry = this.clients.get(ip)
    if (entry !== undefined && now - entry.last > FORGET_AFTER_MS) entry = undefined
    this.clients.delete(ip) // re-inserted last: Map order is then oldest failure first
    if (this.clients.size >= MAX_CLIENTS) {
      this.clients.delete(this.clients.keys().next().value!)
    }
    const count = (entry?.count ?? 0) + 1
    this.clients.set(ip, { count, last: now })
    return failureDelay(count)
  }

  succeed(ip: string): void {
    this.clients.delete(ip)
  }
}

/** The delay of a client's `count`-th failure in a row. */
export function failureDelay(count: number): number {
  if (count <= FREE_FAILURES) return 0
  return Math.min(FIRST_DELAY_MS * 2 ** Math.min(count - FREE_FAILURES - 1, 20), MAX_DELAY_MS)
}
