/**
 * The metrics file is the contract between the collector and the desktop app.
 * These types describe its tables row by row; SCHEMA.md documents the meaning
 * of every column. Nothing here imports better-sqlite3, so the desktop app's
 * renderer can use the types too.
 */

/** `PRAGMA user_version` of a file written by this version of the code. */
export const SCHEMA_VERSION = 9

/** `PRAGMA application_id` of every Routemeter file: "RMTR" in ASCII. */
export const APPLICATION_ID = 0x524d5452

/** Monitoring level of an endpoint, chosen in the desktop app. */
export type MonitorLevel = 0 | 1 | 2 | 3

export const MONITOR_LEVELS: readonly MonitorLevel[] = [0, 1, 2, 3]

/**
 * Route of the endpoint that collects every request no route matched
 * (404s, static files), one per HTTP method, so that a scan of random URLs
 * cannot grow the endpoint table.
 */
export const UNMATCHED_ROUTE = '(unmatched)'

/** Where a version name came from. */
export type VersionSource = 'option' | 'git' | 'package' | 'unknown'

/** Table `endpoint`: one row per HTTP method and route template. */
export interface EndpointRow {
  id: number
  method: string
  route: string
  monitor_level: MonitorLevel
  /** ms since the Unix epoch */
  first_seen: number
  /** ms since the Unix epoch; null until the first request */
  last_requested: number | null
}

/** Table `version`: one row per application version, kept once. */
export interface VersionRow {
  id: number
  name: string
  source: VersionSource
  /** ms since the Unix epoch */
  first_seen: number
  /** JSON array of the git tags that point at the commit (schema 8); null: none known */
  tags: string | null
}

/** Table `user_group`: the users or groups returned by `groupBy`. */
export interface UserGroupRow {
  id: number
  name: string
}

/** Table `client_ip`: client addresses. */
export interface ClientIpRow {
  id: number
  address: string
}

/** Table `request`: one row per request of an endpoint at level 1 or above. */
export interface RequestRow {
  id: number
  endpoint_id: number
  /** start of the request, ms since the Unix epoch (UTC) */
  time: number
  /** microseconds from the first byte handled to the response's end */
  duration_us: number
  /** status code the client got; 0 when the client left before any was sent */
  status: number
  version_id: number
  user_group_id: number | null
  client_ip_id: number | null
  /** 1 when the client closed the connection before the response ended */
  aborted: 0 | 1
  /** node that served the request; null for requests written before schema 2 */
  node_id: number | null
  /** requests this row stands for: 1, or more when the rows beside it were sampled away (schema 7) */
  weight: number
}

/** Table `node`: the machines (host names, or the `node` option) that wrote requests. */
export interface NodeRow {
  id: number
  name: string
  /** ms since the Unix epoch */
  first_seen: number
}

/**
 * Tables `rollup_hour` and `rollup_day` (schema 3): the requests of one
 * endpoint, version and node in one UTC hour (or day), kept by the writer.
 * node_id is 0 for requests without a node. `histogram` holds the
 * durations in 1/16-octave buckets (rollup.ts: encodeHistogram).
 */
export interface RollupRow {
  endpoint_id: number
  /** hours (or days) since the Unix epoch, UTC */
  hour?: number
  day?: number
  version_id: number
  node_id: number
  requests: number
  errors_4xx: number
  errors_5xx: number
  sum_us: number
  min_us: number
  max_us: number
  histogram: Uint8Array
  /**
   * rollup_hour only (schema 5): the smallest and largest request id it
   * counts; its requests lie in that rowid range (with other requests)
   */
  first_id?: number | null
  last_id?: number | null
}

/** Table `rollup_user_day`: as rollup_day, per user or group too (0: none); no error counts. */
export interface RollupUserDayRow {
  endpoint_id: number
  day: number
  user_group_id: number
  version_id: number
  node_id: number
  requests: number
  sum_us: number
  min_us: number
  max_us: number
  histogram: Uint8Array
}

/** Table `rollup_ip_day` (schema 4): as rollup_user_day, per client IP (0: none). */
export interface RollupIpDayRow {
  endpoint_id: number
  day: number
  client_ip_id: number
  version_id: number
  node_id: number
  requests: number
  sum_us: number
  min_us: number
  max_us: number
  histogram: Uint8Array
}

/** Table `rollup_status`: requests per endpoint, UTC hour, node and status code. */
export interface RollupStatusRow {
  endpoint_id: number
  hour: number
  node_id: number
  status: number
  requests: number
}

/** What made an outlier slow, as the collector judged it when the request ended. */
export type OutlierCause =
  /** an outgoing operation (HTTP, database, cache) was open for most of the request */
  | 'operation'
  /** the event loop was blocked (synchronous code ran) for most of the request */
  | 'event-loop'
  /** waiting on nothing the collector sees: a timer, or a client without a tracing channel */
  | 'wait'

/** An outgoing operation that ran during an outlier request (context.operations). */
export interface OutlierOperation {
  /** 'http' (http.request, fetch), or the tracing channel's name, e.g. 'ioredis:command' */
  kind: string
  /** what it went to: 'GET 127.0.0.1:8080/users?…', 'BLPOP 127.0.0.1:6379' */
  target: string
  /** ms from the request's start to the operation's start */
  startMs: number
  /** ms it took; null while it was still open when the request ended */
  durationMs: number | null
  /** whether it was still open when the request passed its threshold */
  openAtCatch: boolean
  /** the error it ended with, if any */
  error?: string
}

/** The process when an outlier was caught (context.process). */
export interface OutlierProcessState {
  /** CPU time of the process over the last second, in % of one core */
  cpuPercent: number
  rssBytes: number
  heapUsedBytes: number
  heapTotalBytes: number
  externalBytes: number
  /** event-loop delay over the last interval, ms */
  loopDelayMaxMs: number
  loopDelayP99Ms: number
  /** share of the last second the event loop was busy, 0 to 1 */
  loopUtilization: number
  /** requests in flight: all of the process's, and this endpoint's (among the oldest 1,000) */
  inFlight: number
  inFlightEndpoint: number
}

/** Table `outlier`'s `context` column (JSON). */
export interface OutlierContext {
  /** header names in lower case; secrets as "[redacted]" */
  headers: Record<string, string | string[]>
  /** the route's parameters, as the framework parsed them */
  params: Record<string, string>
  /** Content-Length of the request, if it gave one */
  bodyBytes: number | null
  operations: OutlierOperation[]
  /** operations left out past the most kept per request */
  operationsDropped: number
  process: OutlierProcessState
  /** ms the event loop was blocked while the request ran (0: not measurably) */
  loopBlockedMs: number
}

/**
 * Table `outlier` (schema 6): a request of an endpoint at level 2 or 3 that
 * ran longer than its endpoint's threshold, with what explains it.
 */
export interface OutlierRow {
  id: number
  endpoint_id: number
  /** start of the request, ms since the Unix epoch */
  time: number
  /** the request's final duration */
  duration_us: number
  /** the endpoint's threshold the request passed */
  threshold_us: number
  /** µs after its start when the context was taken (the duration if it was taken at the end) */
  caught_us: number
  status: number
  version_id: number
  node_id: number | null
  user_group_id: number | null
  client_ip_id: number | null
  method: string
  /** path and query string; secret query parameters as "[redacted]" */
  url: string
  cause: OutlierCause
  /** the cause in words: the operation's target, or how long the loop was blocked */
  cause_detail: string
  /** OutlierContext as JSON */
  context: string
}

/** Table `meta`: facts about the file itself. */
export interface MetaRow {
  key: 'created_at' | 'created_by' | 'app_name' | (string & {})
  value: string
}

/** Names of the tables, for queries that must not drift from the schema. */
export const TABLES = {
  endpoint: 'endpoint',
  version: 'version',
  userGroup: 'user_group',
  clientIp: 'client_ip',
  request: 'request',
  meta: 'meta',
  node: 'node',
  rollupHour: 'rollup_hour',
  rollupDay: 'rollup_day',
  rollupUserDay: 'rollup_user_day',
  rollupIpDay: 'rollup_ip_day',
  rollupStatus: 'rollup_status',
  outlier: 'outlier',
} as const

/** The retention policy in force, in numbers; null: no limit. JSON in meta `retention_policy` (schema 7). */
export interface RetentionPolicy {
  requestsMs: number | null
  outliersMs: number | null
  profilesMs: number | null
  rollupsMs: number | null
  maxFileSizeBytes: number | null
  /** raw rows kept per endpoint and second before sampling starts; null: never sample */
  sampleRowsPerSecond: number | null
  /** who set it: the collector's options, its defaults, or the desktop app */
  setBy: 'option' | 'default' | 'app'
  /** ms since the epoch */
  setAt: number
}
