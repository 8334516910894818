import type { IncomingMessage } from 'node:http'
import { hostname } from 'node:os'
import type { MonitorLevel } from '../schema/types.js'
import { resolveRemote, type RemoteOptions, type ResolvedRemote } from '../remote/options.js'
import { resolveOutliers, type OutlierOptions, type ResolvedOutliers } from '../outliers/options.js'
import { describeValue } from './describe.js'
import {
  resolveRetention,
  type ExplicitPolicy,
  type RetentionOptions,
  type SamplingOptions,
} from '../retention/policy.js'

export { describeValue }

/**
 * What `groupBy`, `getIp` and an `ignore` predicate receive: Express's `req`,
 * Koa's `ctx`, or Node's `IncomingMessage` for the plain http core.
 */
export type RequestLike = unknown

/**
 * `Subject` is what `groupBy` and `getIp` receive: `bind` infers it for
 * Express (its `req`) and Koa (its `ctx`).
 */
export interface RoutemeterOptions<Subject = RequestLike> {
  /** Path of the SQLite metrics file; its folder is created if missing. Default `./routemeter.db`. */
  database?: string
  /** The application's version. Default: the git commit of `git`, else package.json's version. */
  version?: string
  /** Path of a `.git` directory or file. Default: searched upward from the working directory. */
  git?: string
  /** The user or group of a request, e.g. from a session. Called when the response ends. */
  // Method syntax on purpose: a function typed for the framework's own request
  // (`(req: express.Request) => ...`, `(ctx: Koa.Context) => ...`) is accepted without a cast.
  groupBy?(request: Subject): string | number | null | undefined
  /** The client's IP. Default: the socket's address, or the framework's proxy-aware IP when the app trusts proxies. */
  getIp?(request: Subject): string | null | undefined
  /** Monitoring level of endpoints seen for the first time. Default 1. */
  defaultLevel?: MonitorLevel
  /**
   * Requests not to record: paths (exact, or a prefix ending at a `/`), RegExps
   * tested against the path, or a predicate on Node's request.
   */
  ignore?: ReadonlyArray<string | RegExp> | ((req: IncomingMessage) => boolean)
  /** Called with every collector error. Default: one warning per kind of error. */
  onError?: (error: Error) => void
  /** Milliseconds between two writes of buffered rows. Default 250. */
  flushInterval?: number
  /** Most rows kept in memory while the file cannot be written; beyond, rows are dropped and counted. Default 100000. */
  maxBufferedRows?: number
  /**
   * Most endpoints the collector creates; requests of further routes are
   * recorded under their method's `(unmatched)` endpoint. Default 10000.
   */
  maxEndpoints?: number
  /**
   * Most new users (and, counted apart, new client IPs) a process adds to the file per hour;
   * requests of further ones are recorded under `(other)`. Default 10000.
   */
  maxNewClients?: number
  /** Milliseconds between two checks for monitoring levels changed by the desktop app. Default 1000. */
  levelPollInterval?: number
  /** Write what is buffered when the process exits or gets SIGINT/SIGTERM. Default true. */
  flushOnExit?: boolean
  /** Name of the machine the app runs on, kept with every request. Default `os.hostname()`. */
  node?: string
  /**
   * Serve the metrics file to the desktop app under `prefix` (default `/routemeter`), behind
   * `Authorization: Bearer <token>`. `true` or `{}`: the token comes from env `ROUTEMETER_TOKEN`.
   * Default off.
   */
  remote?: boolean | RemoteOptions
  /**
   * Level 2: how outlier requests are found and what they keep (endpoints at
   * level 2 or 3 only). See OutlierOptions for the defaults.
   */
  outliers?: OutlierOptions
  /**
   * How long raw rows and rollups are kept, and the file's size cap. The
   * file keeps the policy in force (the desktop app can change it); options
   * given here replace what they set when the app starts. See RetentionOptions.
   */
  retention?: RetentionOptions
  /** Raw rows kept per endpoint and second before sampling (the rollups count every request), or false. */
  sampling?: SamplingOptions | false
  /** Level 3: how the CPU profiler samples while some endpoint is at level 3. */
  profiles?: ProfileOptions
}

export interface ProfileOptions {
  /**
   * Milliseconds between two CPU samples (0.1 to 100). Shorter sees shorter
   * functions and costs more. Default 5 (as Flask-MonitoringDashboard's).
   */
  samplingInterval?: number
}

export interface ResolvedOptions {
  database: string
  version: string | undefined
  git: string | undefined
  groupBy: ((request: RequestLike) => string | number | null | undefined) | undefined
  getIp: ((request: RequestLike) => string | null | undefined) | undefined
  defaultLevel: MonitorLevel
  ignore: ((req: IncomingMessage) => boolean) | undefined
  onError: ((error: Error) => void) | undefined
  flushInterval: number
  maxBufferedRows: number
  maxEndpoints: number
  maxNewClients: number
  levelPollInterval: number
  flushOnExit: boolean
  node: string
  remote: ResolvedRemote | undefined
  outliers: ResolvedOutliers
  /** what `retention` and `sampling` set explicitly; undefined: none */
  retention: ExplicitPolicy | undefined
  /** level 3's sampling interval */
  profiles: { intervalUs: number }
}

const KNOWN = new Set<string>([
  'database',
  'version',
  'git',
  'groupBy',
  'getIp',
  'defaultLevel',
  'ignore',
  'onError',
  'flushInterval',
  'maxBufferedRows',
  'maxEndpoints',
  'maxNewClients',
  'levelPollInterval',
  'flushOnExit',
  'node',
  'remote',
  'outliers',
  'retention',
  'sampling',
  'profiles',
])

function bad(name: string, expected: string, value: unknown): TypeError {
  return new TypeError(
    `routemeter: option "${name}" must be ${expected}, got ${describeValue(value)}`,
  )
}

function optionalString(o: Record<string, unknown>, name: string): string | undefined {
  const value = o[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0) throw bad(name, 'a non-empty string', value)
  return value
}

function optionalFunction<F>(o: Record<string, unknown>, name: string): F | undefined {
  const value = o[name]
  if (value === undefined) return undefined
  if (typeof value !== 'function') throw bad(name, 'a function', value)
  return value as F
}

function positiveInteger(o: Record<string, unknown>, name: string, fallback: number): number {
  const value = o[name]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw bad(name, 'a positive integer', value)
  }
  return value
}

/** Turns the `ignore` option into one predicate, built once. */
function ignorePredicate(value: unknown): ((req: IncomingMessage) => boolean) | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'function') return value as (req: IncomingMessage) => boolean
  if (!Array.isArray(value))
    throw bad('ignore', 'an array of paths and RegExps, or a function', value)
  const exact = new Set<string>()
  const prefixes: string[] = []
  const patterns: RegExp[] = []
  for (const item of value as unknown[]) {
    if (item instanceof RegExp) patterns.push(item)
    else if (typeof item === 'string' && item.startsWith('/')) {
      const path = item.length > 1 && item.endsWith('/') ? item.slice(0, -1) : item
      exact.add(path)
      prefixes.push(path === '/' ? '/' : `${path}/`)
    } else throw bad('ignore', 'paths starting with "/" or RegExps', item)
  }
  return (req) => {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    if (exact.has(path)) return true
    for (const prefix of prefixes) if (path.startsWith(prefix)) return true
    for (const pattern of patterns) if (pattern.test(path)) return true
    return false
  }
}

/** Validates options once; a bad option throws a TypeError that names it. */
export function resolveOptions(options: unknown = {}): ResolvedOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError('routemeter: options must be an object, e.g. { database: "./metrics.db" }')
  }
  const o = options as Record<string, unknown>
  for (const name of Object.keys(o)) {
    if (!KNOWN.has(name)) throw new TypeError(`routemeter: unknown option "${name}"`)
  }
  const defaultLevel = o.defaultLevel ?? 1
  if (defaultLevel !== 0 && defaultLevel !== 1 && defaultLevel !== 2 && defaultLevel !== 3) {
    throw bad('defaultLevel', 'one of 0, 1, 2, 3', defaultLevel)
  }
  const flushOnExit = o.flushOnExit ?? true
  if (typeof flushOnExit !== 'boolean') throw bad('flushOnExit', 'a boolean', flushOnExit)
  return {
    database: optionalString(o, 'database') ?? './routemeter.db',
    version: optionalString(o, 'version'),
    git: optionalString(o, 'git'),
    groupBy: optionalFunction(o, 'groupBy'),
    getIp: optionalFunction(o, 'getIp'),
    defaultLevel,
    ignore: ignorePredicate(o.ignore),
    onError: optionalFunction(o, 'onError'),
    flushInterval: positiveInteger(o, 'flushInterval', 250),
    maxBufferedRows: positiveInteger(o, 'maxBufferedRows', 100_000),
    maxEndpoints: positiveInteger(o, 'maxEndpoints', 10_000),
    maxNewClients: positiveInteger(o, 'maxNewClients', 10_000),
    levelPollInterval: positiveInteger(o, 'levelPollInterval', 1000),
    flushOnExit,
    node: optionalString(o, 'node') ?? (hostname() || 'unknown'),
    remote: resolveRemote(o.remote),
    outliers: resolveOutliers(o.outliers),
    retention: resolveRetention(o.retention, o.sampling),
    profiles: resolveProfiles(o.profiles),
  }
}

function resolveProfiles(value: unknown): ResolvedOptions['profiles'] {
  if (value === undefined) return { intervalUs: 5000 }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad('profiles', 'an object such as { samplingInterval: 5 }', value)
  }
  for (const name of Object.keys(value)) {
    if (name !== 'samplingInterval')
      throw new TypeError(`routemeter: unknown option "profiles.${name}"`)
  }
  const ms = (value as { samplingInterval?: unknown }).samplingInterval ?? 5
  if (typeof ms !== 'number' || !(ms >= 0.1 && ms <= 100)) {
    throw bad('profiles.samplingInterval', 'a number of milliseconds from 0.1 to 100', ms)
  }
  return { intervalUs: Math.round(ms * 1000) }
}
