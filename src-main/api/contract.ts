/**
 * The one API contract between the dashboard UI and the main-process
 * services. Two transports implement it: IPC in the desktop app (the preload
 * exposes one named function per method) and HTTP JSON in web mode
 * (`GET /api/<method>?<args>` for reads, `POST /api/<method>` with a JSON body
 * for writes, server-sent events on `GET /api/events`).
 *
 * Types and a few plain constants: the renderer imports this file and nothing
 * else from src-main.
 * Times are ms since the Unix epoch; durations are microseconds.
 */
import type { MonitorLevel, VersionSource } from 'routemeter/schema'

export type { MonitorLevel, VersionSource }

/** Every query is limited to [from, to) and buckets days in a fixed UTC offset. */
export interface RangeArgs {
  /** inclusive, ms since the epoch */
  from: number
  /** exclusive, ms since the epoch */
  to: number
  /** minutes to add to UTC to get the viewer's local time (0 = UTC); sets day and hour buckets */
  utcOffsetMinutes: number
  /** restrict to these endpoints; absent or empty = all */
  endpointIds?: number[]
  /**
   * restrict to requests served by these nodes (node names; UNKNOWN_NODE for
   * requests without a node); absent or empty = all. Unknown names match nothing.
   */
  nodes?: string[]
}

/**
 * How the views name the node of requests that have none: requests written
 * before schema 2, or by a collector that did not record its node.
 */
export const UNKNOWN_NODE = '(unknown)'

export interface EndpointArgs extends RangeArgs {
  endpointId: number
}

/** Five-number summary for a box plot; whiskers are Tukey's (1.5 × IQR, clipped to the data). */
export interface BoxStats {
  count: number
  min: number
  q1: number
  median: number
  q3: number
  max: number
  /** lowest value >= q1 - 1.5 IQR */
  whiskerLow: number
  /** highest value <= q3 + 1.5 IQR */
  whiskerHigh: number
  mean: number
  p95: number
}

export interface FileInfo {
  /** absolute path of the open file */
  path: string
  sizeBytes: number
  schemaVersion: number
  requestCount: number
  endpointCount: number
  /** time of the first and last recorded request; null when there is none */
  firstRequest: number | null
  lastRequest: number | null
  /** ms since the epoch when the collector created the file */
  createdAt: number | null
  /** true when this is the generated demo database */
  demo: boolean
  /** the nodes that wrote requests, by name; UNKNOWN_NODE last when some requests have no node */
  nodes: string[]
}

export interface Endpoint {
  id: number
  method: string
  route: string
  level: MonitorLevel
  /** ms since the epoch; null if never requested */
  lastRequested: number | null
  firstSeen: number
}

export interface PeriodStats {
  hits: number
  /** requests answered 400-499 */
  errors4xx: number
  /** requests answered 500-599 */
  errors5xx: number
  /** null when there is no request in the period */
  medianUs: number | null
  p95Us: number | null
}

/** One row of the endpoints overview. */
export interface OverviewRow extends Endpoint {
  /** since local midnight (per utcOffsetMinutes) */
  today: PeriodStats
  /** the last 7 × 24 hours */
  week: PeriodStats
  /** the selected range */
  range: PeriodStats
}

/** Requests per endpoint per day (stacked bars). */
export interface Utilization {
  /** local days 'YYYY-MM-DD', every day of the range in order */
  days: string[]
  series: Array<{ endpointId: number; counts: number[] }>
}

export interface HeatmapArgs extends RangeArgs {
  /** one endpoint, or all (in endpointIds) when absent */
  endpointId?: number
}

/** Requests by local hour of day (rows, 0-23) and day (columns). */
export interface HourHeatmap {
  days: string[]
  /** counts[hour][dayIndex] */
  counts: number[][]
}

export interface EndpointBox {
  endpointId: number
  stats: BoxStats
}

export interface Version {
  id: number
  name: string
  source: VersionSource
  firstSeen: number
}

export interface VersionEvolution {
  /** versions in the order they appeared (first seen), only those with requests in range */
  versions: Version[]
  /** box per version for the endpoint; null where the version has no request */
  boxes: Array<BoxStats | null>
}

export interface VersionUtilization {
  versions: Version[]
  /** counts[versionIndex][endpointIndex] */
  endpointIds: number[]
  counts: number[][]
}

export type ClientKind = 'user' | 'ip'

export interface ClientArgs extends EndpointArgs {
  kind: ClientKind
  /** the clients to show; absent = the busiest `limit` */
  names?: string[]
  /** default 10 */
  limit?: number
}

export interface ClientBreakdown {
  /** every client with requests in range, busiest first (for the selector), at most 500 */
  available: Array<{ name: string; count: number }>
  /** the shown clients, busiest first; `(none)` stands for requests without a user or IP */
  clients: Array<{ name: string; stats: BoxStats }>
  /** versions that appear in the matrix, in order of first seen */
  versions: Version[]
  /** median duration per client and version: medianUs[clientIndex][versionIndex], null where none */
  medianUs: Array<Array<number | null>>
}

export interface StatusArgs extends RangeArgs {
  endpointId?: number
}

export interface StatusCodes {
  days: string[]
  /** one series per status code, most frequent first */
  series: Array<{ status: number; counts: number[] }>
}

export interface ErrorRequest {
  id: number
  endpointId: number
  time: number
  durationUs: number
  status: number
  version: string
  user: string | null
  ip: string | null
  aborted: boolean
}

export interface NodeArgs extends RangeArgs {
  /** one endpoint, or all (in endpointIds) when absent */
  endpointId?: number
}

/** One node's share of the requests in range. */
export interface NodeShare {
  node: string
  hits: number
  /** requests answered 400-499 */
  errors4xx: number
  /** requests answered 500-599 */
  errors5xx: number
  /** null when the node has no request in range */
  stats: BoxStats | null
}

export interface SetLevelArgs {
  endpointId: number
  level: MonitorLevel
}

/** What the file watcher tells the UI. */
export type FileEvent =
  | { kind: 'changed' }
  | { kind: 'replaced' }
  | { kind: 'deleted' }
  | { kind: 'opened'; info: FileInfo }
  | { kind: 'error'; error: ApiError }

/** Every code an ApiError can carry. */
export const API_ERROR_CODES = [
  'NO_FILE',
  'FILE_MISSING',
  'FILE_EMPTY',
  'NOT_SQLITE',
  'CORRUPT',
  'OTHER_APP',
  'TOO_NEW',
  'BAD_ARGUMENT',
  'READ_ONLY',
  'INTERNAL',
] as const

/** Errors cross the process boundary as data; `message` is for a person. */
export interface ApiError {
  code: (typeof API_ERROR_CODES)[number]
  message: string
}

/** Whether a value that crossed a process boundary is an ApiError. */
export function isApiError(value: unknown): value is ApiError {
  const candidate = value as Partial<ApiError> | null
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.code === 'string' &&
    (API_ERROR_CODES as readonly string[]).includes(candidate.code) &&
    typeof candidate.message === 'string'
  )
}

/** The dashboard API: every method takes one plain-data argument and returns plain data. */
export interface DashboardApi {
  info(args: Record<string, never>): Promise<FileInfo>
  /** desktop: open another file; web mode refuses unless started with --allow-open */
  openFile(args: { path: string }): Promise<FileInfo>
  endpoints(args: RangeArgs): Promise<OverviewRow[]>
  utilization(args: RangeArgs): Promise<Utilization>
  hourHeatmap(args: HeatmapArgs): Promise<HourHeatmap>
  performance(args: RangeArgs): Promise<EndpointBox[]>
  versionEvolution(args: EndpointArgs): Promise<VersionEvolution>
  versionUtilization(args: RangeArgs): Promise<VersionUtilization>
  clients(args: ClientArgs): Promise<ClientBreakdown>
  statusCodes(args: StatusArgs): Promise<StatusCodes>
  latestErrors(args: StatusArgs & { limit?: number }): Promise<ErrorRequest[]>
  /** every node in scope (the `nodes` filter, or all), busiest first, with its hits and durations */
  nodeBreakdown(args: NodeArgs): Promise<NodeShare[]>
  setLevel(args: SetLevelArgs): Promise<Endpoint>
}

export type ApiMethod = keyof DashboardApi
export type ApiArgs<M extends ApiMethod> = Parameters<DashboardApi[M]>[0]
export type ApiResult<M extends ApiMethod> = Awaited<ReturnType<DashboardApi[M]>>

/** Methods that change the file (POST in web mode). */
export const WRITE_METHODS: readonly ApiMethod[] = ['setLevel', 'openFile']

/**
 * What the desktop preload exposes as `window.routemeter`: the API's named
 * functions plus file events and the native open dialog. Web mode's client
 * implements the same shape over HTTP and server-sent events.
 */
export interface DashboardBridge extends DashboardApi {
  /** Calls `listener` for every file event; returns the unsubscribe function. */
  onFileEvent(listener: (event: FileEvent) => void): () => void
  /** Shows the native open dialog (desktop only); null when cancelled or unavailable. */
  chooseFile(): Promise<FileInfo | null>
  /** 'desktop' over IPC, 'web' over HTTP */
  readonly transport: 'desktop' | 'web'
}
