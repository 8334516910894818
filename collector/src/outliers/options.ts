/** The `outliers` option: how level 2 finds the requests worth keeping, and what it keeps. */
import { describeValue } from '../core/describe.js'

export interface OutlierOptions {
  /**
   * A request is an outlier once it runs longer than `factor` times the
   * median of its endpoint's recent requests. Default 2.5.
   */
  factor?: number
  /** Nothing shorter than this many milliseconds is an outlier. Default 50. */
  minDuration?: number
  /** Most outliers captured per endpoint and minute; further ones are not. Default 10. */
  maxPerMinute?: number
  /**
   * Header and query parameter names stored as "[redacted]", besides
   * authorization, cookie, set-cookie, x-api-key and proxy-authorization.
   */
  redact?: readonly string[]
  /**
   * Names of further `diagnostics_channel` TracingChannels whose operations
   * an outlier lists (the built-in ones: HTTP, fetch, ioredis, node-redis, mysql2).
   */
  channels?: readonly string[]
  /**
   * Milliseconds between two looks at the requests in flight: a request is
   * caught at most this long after it passed its threshold. Default 50.
   */
  sweepInterval?: number
  /**
   * Whether outliers list their outgoing operations. This needs each request
   * to run in an AsyncLocalStorage context, which on Node 20 costs every
   * promise of the process while some endpoint is at level 2 or 3 (README,
   * Performance). false: outliers keep the rest (cause: the event loop, or a
   * wait) at no such cost. Default true.
   */
  operations?: boolean
}

export interface ResolvedOutliers {
  factor: number
  /** µs */
  minDurationUs: number
  maxPerMinute: number
  /** lower-case names */
  redact: ReadonlySet<string>
  channels: readonly string[]
  sweepIntervalMs: number
  operations: boolean
}

/** Always redacted: what carries credentials in every HTTP API. */
export const SECRET_NAMES = [
  'authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'proxy-authorization',
] as const

const KNOWN = new Set([
  'operations',
  'factor',
  'minDuration',
  'maxPerMinute',
  'redact',
  'channels',
  'sweepInterval',
])

function bad(name: string, expected: string, value: unknown): TypeError {
  return new TypeError(
    `routemeter: option "outliers.${name}" must be ${expected}, got ${describeValue(value)}`,
  )
}

function names(o: Record<string, unknown>, name: string): string[] {
  const value = o[name]
  if (value === undefined) return []
  if (!Array.isArray(value)) throw bad(name, 'an array of names', value)
  for (const item of value as unknown[]) {
    if (typeof item !== 'string' || item === '') throw bad(name, 'an array of names', item)
  }
  return value as string[]
}

/** Validates `outliers` once, at bind time; a bad value throws a TypeError that names it. */
export function resolveOutliers(value: unknown): ResolvedOutliers {
  if (value === undefined) value = {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(
      `routemeter: option "outliers" must be an object { factor?, minDuration?, maxPerMinute?, redact?, channels?, sweepInterval?, operations? }, got ${describeValue(value)}`,
    )
  }
  const o = value as Record<string, unknown>
  for (const name of Object.keys(o)) {
    if (!KNOWN.has(name)) throw new TypeError(`routemeter: unknown option "outliers.${name}"`)
  }
  const factor = o.factor ?? 2.5
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor <= 1) {
    throw bad('factor', 'a number above 1', factor)
  }
  const minDuration = o.minDuration ?? 50
  if (typeof minDuration !== 'number' || !Number.isFinite(minDuration) || minDuration < 0) {
    throw bad('minDuration', 'a number of milliseconds, 0 or more', minDuration)
  }
  const maxPerMinute = o.maxPerMinute ?? 10
  if (typeof maxPerMinute !== 'number' || !Number.isInteger(maxPerMinute) || maxPerMinute <= 0) {
    throw bad('maxPerMinute', 'a positive integer', maxPerMinute)
  }
  const sweepInterval = o.sweepInterval ?? 50
  if (
    typeof sweepInterval !== 'number' ||
    !Number.isInteger(sweepInterval) ||
    sweepInterval < 10 ||
    sweepInterval > 60_000
  ) {
    throw bad('sweepInterval', 'an integer number of milliseconds from 10 to 60000', sweepInterval)
  }
  const operations = o.operations ?? true
  if (typeof operations !== 'boolean') throw bad('operations', 'a boolean', operations)
  const redact = new Set<string>(SECRET_NAMES)
  for (const name of names(o, 'redact')) redact.add(name.toLowerCase())
  return {
    factor,
    minDurationUs: Math.round(minDuration * 1000),
    maxPerMinute,
    redact,
    channels: names(o, 'channels'),
    sweepIntervalMs: sweepInterval,
    operations,
  }
}
