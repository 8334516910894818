import { createHash, timingSafeEqual } from 'node:crypto'

import { isIP } from 'node:net'

/** Failed token checks one client may have per window; then it is answered 429 until the window ends. */
export const CLIENT_FAILURES = 10
/** Failed checks of all clients per window: past it, only clients that authenticated before are checked. */
export const ALL_FAILURES = 100
export const WINDOW_MS = 60_000
/** Most clients remembered; the oldest are forgotten first, so a scan cannot grow memory. */
const MAX_CLIENTS = 10_000
/** How long a client that sent the right token stays one the global limit lets through. */
const KNOWN_FOR_MS = 24 * 60 * 60_000

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

/**
 * The key a client's failures are counted under: its address, IPv4 inside
 * IPv6 as IPv4, and an IPv6 address by its /64 (one host usually has a
 * whole /64 to rotate through).
 */
export function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped !== null) return mapped[1]!
  if (isIP(address) !== 6) return address
  const [head = '', tail = ''] = address.toLowerCase().split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === '' ? [] : tail.split(':')
  const groups = address.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`
}

/** A count of failures in a fixed window. */
interface Window {
  count: number
  start: number
}

/**
 * Limits token guessing: each client may fail CLIENT_FAILURES times a
 * minute, and all clients together ALL_FAILURES times (against an attacker
 * who rotates addresses); past a limit, a request is answered 429 before
 * its token is looked at, so a guess then learns nothing. An attempt counts
 * when it arrives, so concurrent guesses count too. A client that sent the
 * right token in the last day is let through the global limit (not its own):
 * the legitimate user keeps working while someone else guesses.
 */
export class FailureThrottle {
  private readonly clients = new Map<string, Window>()
  private readonly known = new Map<string, number>()
  private all: Window = { count: 0, start: 0 }

  private windowOf(key: string, now: number): Window {
    let window = this.clients.get(key)
    if (window === undefined || now - window.start >= WINDOW_MS) {
      window = { count: 0, start: now }
      this.clients.delete(key)
      if (this.clients.size >= MAX_CLIENTS) this.clients.delete(this.clients.keys().next().value!)
      this.clients.set(key, window)
    }
    return window
  }

  /**
   * Counts an attempt of `client` as a failure until `succeed` says otherwise;
   * returns 0 when its token may be checked, else the ms until it may try again.
   */
  attempt(client: string, now = Date.now()): number {
    const key = clientKey(client)
    const window = this.windowOf(key, now)
    if (now - this.all.start >= WINDOW_MS) this.all = { count: 0, start: now }
    if (window.count >= CLIENT_FAILURES) return window.start + WINDOW_MS - now
    const knownUntil = this.known.get(key) ?? 0
    if (this.all.count >= ALL_FAILURES && knownUntil <= now) return this.all.start + WINDOW_MS - now
    window.count++
    this.all.count++
    return 0
  }

  /** The attempt of `client` had the right token: it is no failure, and the client is known. */
  succeed(client: string, now = Date.now()): void {
    const key = clientKey(client)
    const window = this.clients.get(key)
    if (window !== undefined && window.count > 0) window.count--
    if (this.all.count > 0) this.all.count--
    this.known.delete(key)
    if (this.known.size >= MAX_CLIENTS) this.known.delete(this.known.keys().next().value!)
    this.known.set(key, now + KNOWN_FOR_MS)
  }
}
