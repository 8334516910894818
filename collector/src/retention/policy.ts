/*
 * The retention policy: how long each kind of data is kept, how large the
 * file may grow, and above which rate raw request rows are sampled. The
 * options are parsed here (a bad one is a TypeError naming it); the policy in
 * force is the file's (meta `retention_policy`), so that every process
 * writing one file applies the same one.
 */
import { describeValue } from '../core/describe.js'
import type { RetentionPolicy } from '../schema/types.js'

export type { RetentionPolicy }

/** What the `retention` option accepts. Durations: `'30d'`, `'12h'`, `'2y'`; `false`: keep forever. */
export interface RetentionOptions {
  /** raw request rows. Default `'14d'`. */
  requests?: string | false
  /** outliers (level 2). Default `'30d'`. */
  outliers?: string | false
  /** profiles (level 3). Default `'30d'`. */
  profiles?: string | false
  /** the rollups (hours, days, users, IPs, statuses): the long-lived record. Default `false`. */
  rollups?: string | false
  /** past this size (`'1GB'`, `'500MB'` or bytes) the oldest raw rows go first, rollups last. Default `'1GB'`. */
  maxFileSize?: string | number | false
}

/** What the `sampling` option accepts; `false` keeps every raw row. */
export interface SamplingOptions {
  /** raw rows kept per endpoint and second, beyond a minute's burst; errors and outliers always kept. Default 10. */
  rowsPerSecond?: number
}

/** The meta key that holds the policy in force. */
export const POLICY_KEY = 'retention_policy'

/** Meta keys: from when each kind of data is kept whole (ms since the epoch; absent: from the start). */
export const KEPT_SINCE_KEYS = {
  requests: 'requests_kept_since',
  outliers: 'outliers_kept_since',
  rollups: 'rollups_kept_since',
} as const

const UNIT_MS: Record<string, number> = {
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
}

const UNIT_BYTES: Record<string, number> = {
  B: 1,
  KB: 1024,
  MB: 1024 ** 2,
  GB: 1024 ** 3,
  TB: 1024 ** 4,
}

/** Smallest retention accepted: pruning runs about once a minute. */
export const MIN_RETENTION_MS = 3_600_000

/** Smallest size cap accepted: below it, the rollups of a few endpoints alone would not fit. */
export const MIN_FILE_SIZE_BYTES = 10 * 1024 ** 2

export const DEFAULT_POLICY: Omit<RetentionPolicy, 'setBy' | 'setAt'> = {
  requestsMs: 14 * UNIT_MS.d!,
  outliersMs: 30 * UNIT_MS.d!,
  profilesMs: 30 * UNIT_MS.d!,
  rollupsMs: null,
  maxFileSizeBytes: 1024 ** 3,
  sampleRowsPerSecond: 10,
}

function bad(name: string, expected: string, value: unknown): TypeError {
  return new TypeError(
    `routemeter: option "${name}" must be ${expected}, got ${describeValue(value)}`,
  )
}

/** `'30d'` as milliseconds; false as null. Throws a TypeError naming `name` otherwise. */
export function parseDuration(value: unknown, name: string): number | null {
  if (value === false) return null
  const match = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([mhdwy])\s*$/.exec(value) : null
  if (match === null) {
    throw bad(
      name,
      "a duration such as '30d', '12h', '2w' or '1y' (m, h, d, w, y), or false",
      value,
    )
  }
  const ms = Math.round(Number(match[1]) * UNIT_MS[match[2]!]!)
  if (ms < MIN_RETENTION_MS) throw bad(name, 'at least 1 hour', value)
  return ms
}

/** `'2GB'` or a number of bytes; false as null. */
export function parseSize(value: unknown, name: string): number | null {
  if (value === false) return null
  let bytes: number | undefined
  if (typeof value === 'number' && Number.isSafeInteger(value)) bytes = value
  else if (typeof value === 'string') {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB)\s*$/i.exec(value)
    if (match !== null) bytes = Math.round(Number(match[1]) * UNIT_BYTES[match[2]!.toUpperCase()]!)
  }
  if (bytes === undefined)
    throw bad(name, "a size such as '2GB' or '500MB', a number of bytes, or false", value)
  if (bytes < MIN_FILE_SIZE_BYTES) throw bad(name, 'at least 10MB', value)
  return bytes
}

/** The policy fields the options set explicitly (undefined: none given). */
export type ExplicitPolicy = Partial<Omit<RetentionPolicy, 'setBy' | 'setAt'>>

/** Validates the `retention` and `sampling` options; returns only what they set. */
export function resolveRetention(
  retention: unknown,
  sampling: unknown,
): ExplicitPolicy | undefined {
  const policy: ExplicitPolicy = {}
  if (retention !== undefined) {
    if (retention === null || typeof retention !== 'object' || Array.isArray(retention)) {
      throw bad('retention', "an object such as { requests: '30d', maxFileSize: '2GB' }", retention)
    }
    const o = retention as Record<string, unknown>
    const fields = {
      requests: 'requestsMs',
      outliers: 'outliersMs',
      profiles: 'profilesMs',
      rollups: 'rollupsMs',
    } as const
    for (const key of Object.keys(o)) {
      if (key === 'maxFileSize') {
        if (o[key] !== undefined)
          policy.maxFileSizeBytes = parseSize(o[key], 'retention.maxFileSize')
      } else if (key in fields) {
        if (o[key] !== undefined)
          policy[fields[key as keyof typeof fields]] = parseDuration(o[key], `retention.${key}`)
      } else {
        throw new TypeError(
          `routemeter: unknown option "retention.${key}" (known: requests, outliers, profiles, rollups, maxFileSize)`,
        )
      }
    }
  }
  if (sampling !== undefined) {
    if (sampling === false) policy.sampleRowsPerSecond = null
    else if (sampling === null || typeof sampling !== 'object' || Array.isArray(sampling)) {
      throw bad('sampling', '{ rowsPerSecond: number } or false', sampling)
    } else {
      const o = sampling as Record<string, unknown>
      for (const key of Object.keys(o)) {
        if (key !== 'rowsPerSecond')
          throw new TypeError(`routemeter: unknown option "sampling.${key}"`)
      }
      const rate = o.rowsPerSecond
      if (rate !== undefined) {
        if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0) {
          throw bad('sampling.rowsPerSecond', 'a positive number', rate)
        }
        policy.sampleRowsPerSecond = rate
      }
    }
  }
  return Object.keys(policy).length === 0 ? undefined : policy
}

/**
 * Reads a stored policy (meta's JSON); undefined when absent or not one
 * (an unreadable value is replaced by the next writer, never thrown).
 */
export function parsePolicy(json: string | undefined): RetentionPolicy | undefined {
  if (json === undefined) return undefined
  try {
    const value = JSON.parse(json) as Record<string, unknown>
    const limit = (v: unknown): number | null | undefined =>
      v === null ? null : typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined
    const fields = [
      'requestsMs',
      'outliersMs',
      'profilesMs',
      'rollupsMs',
      'maxFileSizeBytes',
      'sampleRowsPerSecond',
    ] as const
    const policy: Record<string, unknown> = {}
    for (const field of fields) {
      const v = limit(value[field])
      if (v === undefined) return undefined
      policy[field] = v
    }
    const setBy = value.setBy
    if (setBy !== 'option' && setBy !== 'default' && setBy !== 'app') return undefined
    return {
      ...(policy as Omit<RetentionPolicy, 'setBy' | 'setAt'>),
      setBy,
      setAt: typeof value.setAt === 'number' ? value.setAt : 0,
    }
  } catch {
    return undefined
  }
}

/**
 * The policy a collector writes when it opens a file: its explicit options
 * over the file's policy (the latest deploy decides what it set), the
 * file's policy for the rest, the defaults for a file without one. Returns
 * undefined when the file's policy stays as it is.
 */
export function policyToWrite(
  stored: RetentionPolicy | undefined,
  explicit: ExplicitPolicy | undefined,
  now: number,
): RetentionPolicy | undefined {
  if (stored !== undefined && explicit === undefined) return undefined
  const base = stored ?? { ...DEFAULT_POLICY, setBy: 'default' as const, setAt: now }
  if (explicit === undefined) return base
  const next: RetentionPolicy = { ...base, ...explicit, setBy: 'option', setAt: now }
  const same = (Object.keys(explicit) as Array<keyof ExplicitPolicy>).every(
    (key) => stored !== undefined && stored[key] === explicit[key],
  )
  return same ? undefined : next
}
