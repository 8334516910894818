/**
 * One file on purpose: the whole contract between the processes, so that a change to it is one diff.
 *
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
import type {
  MonitorLevel,
  OutlierCause,
  OutlierContext,
  OutlierOperation,
  OutlierProcessState,
  RetentionPolicy,
  VersionSource,
} from 'routemeter/schema'
import type { CompareTest, Comparison, Verdict } from 'routemeter/compare'
import type { CpuProfile, FoldedProfile } from 'routemeter/profiles'
export type { CpuProfile, FoldedProfile, ProfileFrame } from 'routemeter/profiles'
export type { EndpointComparison, SideFigures } from 'routemeter/compare'

export type {
  CompareTest,
  MonitorLevel,
  OutlierCause,
  OutlierContext,
  OutlierOperation,
  OutlierProcessState,
  VersionSource,
}

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
  /** what is damaged in the file, naming it, when reading it met damaged pages; else null */
  damaged: string | null
  /** from when raw request rows are kept (older ones were pruned), ms since the epoch; 0: from the start */
  rawSince: number
}

/** A retention policy as the app sets it; null: no limit (keep forever, no cap, no sampling). */
export type RetentionSettings = Omit<RetentionPolicy, 'setBy' | 'setAt'>

/**
 * Two sides of a comparison: version ids (empty: the latest release, and the
 * one before it), or time ranges [from, to) in ms, which take every version.
 */
export interface CompareArgs {
  baseline: number[]
  candidate: number[]
  baselineRange?: [from: number, to: number]
  candidateRange?: [from: number, to: number]
  /** the test behind the verdicts; default Mood's median test */
  test?: CompareTest
}

/** An endpoint's CPU profile (level 3) over a range: all versions, or those given. */
export interface ProfileArgs extends EndpointArgs {
  versionIds?: number[]
}

export interface EndpointProfile {
  /** the versions with samples in range (for choosing), each with its samples */
  versions: Array<Version & { samples: number }>
  /** the merged profile of the versions asked for; null without a sample */
  profile: FoldedProfile | null
  /** stored rows that did not decode (left out) */
  damagedRows: number
}

/** A comparison per endpoint, with every version (for choosing the sides) and each side's ids. */
export interface ReleaseComparison extends Comparison {
  versions: Version[]
  baselineIds: number[]
  candidateIds: number[]
  /** endpoint ids of the rows, in their order (to open an endpoint's page) */
  endpointIds: number[]
}

/** What the "About this file" panel shows. */
export interface AboutFile {
  path: string
  /** the file and its -wal on disk */
  sizeBytes: number
  /** pages in use and free pages (freed by pruning, reused or given back) */
  usedBytes: number
  freeBytes: number
  /** whether freed pages go back to the disk (files created since schema 7; `routemeter vacuum` converts others) */
  incrementalVacuum: boolean
  /** the policy in force; null: the file has none yet (no collector of schema 7 opened it) */
  policy: RetentionPolicy | null
  /** from when each kind is kept whole, ms since the epoch; null: from the start */
  keptSince: { requests: number | null; outliers: number | null; rollups: number | null }
  /** space per table (its indexes included) and its rows, largest first */
  tables: Array<{ name: string; bytes: number; rows: number }>
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
  /** outliers (level 2) in the selected range */
  outliers: number
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
  /** the git tags of its commit (releases), sorted; empty when none is known */
  tags: string[]
}

/**
 * What a box of the version timeline is: every version; the versions without
 * the short-lived ones (untagged, replaced within an hour or with fewer than
 * 30 of the endpoint's requests in range); or releases (git tags), the
 * commits before a tag folded into it.
 */
export type VersionTimeline = 'versions' | 'lasting' | 'releases'

export interface VersionEvolutionArgs extends EndpointArgs {
  /** default 'versions' */
  timeline?: VersionTimeline
}

export interface VersionEvolution {
  /**
   * one per box, in the order they appeared (first seen), only those with
   * requests in range; a release's is its tagged version
   */
  versions: Version[]
  /** box per version for the endpoint; null where the version has no request */
  boxes: Array<BoxStats | null>
  /** per box, the versions folded into it besides its own (the commits leading to a release) */
  folded: number[]
  /**
   * per box, its verdict against the box before it for this endpoint over the
   * same range and every node (routemeter/compare); null for the first box or
   * where either has no request
   */
  changes: Array<{ verdict: Verdict; medianChangePercent: number | null } | null>
  /** short-lived versions left out */
  hidden: number
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

export interface OutlierArgs extends RangeArgs {
  /** one endpoint, or all (in endpointIds) when absent */
  endpointId?: number
  /** outliers to skip, newest first (paging); default 0 */
  offset?: number
  /** default 20, at most 200 */
  limit?: number
}

/** An outlier as the lists show it (durations in µs). */
export interface OutlierSummary {
  id: number
  endpointId: number
  time: number
  durationUs: number
  /** the endpoint's threshold it passed */
  thresholdUs: number
  /** µs after its start when its context was taken (its duration: taken when it ended) */
  caughtUs: number
  status: number
  method: string
  /** path and query, secrets redacted */
  url: string
  cause: OutlierCause
  causeDetail: string
  version: string
  user: string | null
  ip: string | null
  node: string
}

export interface OutlierPage {
  /** outliers in scope and range */
  total: number
  /** newest first, from `offset` */
  outliers: OutlierSummary[]
}

export interface OutlierDetail extends OutlierSummary {
  context: OutlierContext
  /** its own CPU samples, when its endpoint was at level 3 */
  profile: FoldedProfile | null
}

/** An endpoint's durations over time, with its outliers and the thresholds they passed. */
export interface OutlierTimeline {
  /** [time, durationUs] of requests in range, evenly thinned to at most 2,000 */
  requests: Array<[number, number]>
  /** requests in range before thinning (the rows' weights: sampled rows stand for more) */
  requestCount: number
  /** whether the raw rows are a sample (some stand for requests sampled away) */
  sampled: boolean
  /** from when raw rows are kept, ms since the epoch (0: from the start) */
  rawSince: number
  /** [time, durationUs, outlier id] */
  outliers: Array<[number, number, number]>
  /** [time, thresholdUs]: the threshold each outlier passed, in time order */
  threshold: Array<[number, number]>
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
  'WRONG_TOKEN',
  'UNREACHABLE',
  'NOT_ROUTEMETER',
  'DOWNLOAD_FAILED',
  'CANCELLED',
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
  versionEvolution(args: VersionEvolutionArgs): Promise<VersionEvolution>
  versionUtilization(args: RangeArgs): Promise<VersionUtilization>
  clients(args: ClientArgs): Promise<ClientBreakdown>
  statusCodes(args: StatusArgs): Promise<StatusCodes>
  latestErrors(args: StatusArgs & { limit?: number }): Promise<ErrorRequest[]>
  /** every node in scope (the `nodes` filter, or all), busiest first, with its hits and durations */
  nodeBreakdown(args: NodeArgs): Promise<NodeShare[]>
  /** outliers (level 2) newest first, a page at a time */
  outliers(args: OutlierArgs): Promise<OutlierPage>
  /** one outlier with its context; BAD_ARGUMENT when there is none with this id */
  outlier(args: { id: number }): Promise<OutlierDetail>
  /** an endpoint's durations in range with its outliers marked */
  outlierTimeline(args: EndpointArgs): Promise<OutlierTimeline>
  /** the file's size, its retention policy and the space each table takes */
  aboutFile(args: Record<string, never>): Promise<AboutFile>
  /** level 3: an endpoint's CPU profile, merged over the range */
  profile(args: ProfileArgs): Promise<EndpointProfile>
  /** the same as a Chrome DevTools `.cpuprofile` (null: no sample) */
  cpuProfile(args: ProfileArgs): Promise<CpuProfile | null>
  /** an outlier's own CPU profile as a `.cpuprofile` (null: none) */
  outlierCpuProfile(args: { id: number }): Promise<CpuProfile | null>
  /** what a release changed, per endpoint, with a verdict */
  compare(args: CompareArgs): Promise<ReleaseComparison>
  setLevel(args: SetLevelArgs): Promise<Endpoint>
  /** writes a retention policy into the file; running collectors apply it within seconds */
  setRetention(args: RetentionSettings): Promise<AboutFile>
}

export type ApiMethod = keyof DashboardApi
export type ApiArgs<M extends ApiMethod> = Parameters<DashboardApi[M]>[0]
export type ApiResult<M extends ApiMethod> = Awaited<ReturnType<DashboardApi[M]>>

/** Methods that change the file (POST in web mode). */
export const WRITE_METHODS: readonly ApiMethod[] = ['setLevel', 'openFile', 'setRetention']

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
  /** servers, pulled copies and merged datasets; absent where the transport has none */
  readonly sources?: SourcesApi
  /** desktop: the native dialog to pick several metrics files (to open as one); [] when cancelled */
  chooseFiles?(): Promise<string[]>
  /** desktop: calls `listener` when a menu item asks the UI for something; returns the unsubscribe */
  onMenuCommand?(listener: (command: MenuCommand) => void): () => void
}

/** What the desktop menu asks of the UI. */
export type MenuCommand = 'open-server' | 'open-several' | 'refresh'

/** A server the user added: its token never crosses to the UI. */
export interface ServerEntry {
  /** stable id derived from the URL */
  id: string
  /** the app's URL as typed, e.g. https://api.example.com */
  url: string
  /** node name the server gave at its last answer; null before */
  node: string | null
  /** when its copy was last pulled (ms since the epoch); null without a copy */
  pulledAt: number | null
  /** size of the pulled copy in bytes; null without a copy */
  copyBytes: number | null
}

/** A download in progress. */
export interface PullProgress {
  serverId: string
  url: string
  phase: 'connecting' | 'downloading' | 'checking' | 'merging'
  /** compressed bytes received so far */
  receivedBytes: number
  /** compressed bytes announced by the server (Content-Length); null when unknown */
  totalBytes: number | null
  /** true for a refresh that fetches only what is new since the copy */
  incremental: boolean
}

/** One part of the dataset on screen: a local file or a server's pulled copy. */
export type SourceRef = { kind: 'file'; path: string } | { kind: 'server'; serverId: string }

export interface DatasetSource {
  kind: 'file' | 'server'
  /** file path, or the server's URL */
  label: string
  /** set for servers */
  serverId: string | null
}

export interface SourcesState {
  /** whether this app may contact servers (web mode: --allow-remote) */
  remoteAllowed: boolean
  /** whether local files can be named from the UI (web mode: --allow-open) */
  openAllowed: boolean
  servers: ServerEntry[]
  /** the running download, if any */
  pull: PullProgress | null
  /** why the last download failed; cleared by the next one */
  pullError: ApiError | null
  /** the last download that succeeded (a refresh says whether only what was new came) */
  lastPull: PullProgress | null
  /** what the open dataset is made of; one file source for a plain file, null when none */
  dataset: DatasetSource[] | null
}

/** Whether a source took a monitoring-level change. */
export interface SourceLevelResult {
  source: DatasetSource
  accepted: boolean
  /** why not, for a person; null when accepted */
  message: string | null
}

export interface LevelChange {
  /** the endpoint in the open dataset, with its level as now shown */
  endpoint: Endpoint
  sources: SourceLevelResult[]
}

/**
 * Servers and datasets of several sources (`api.sources.<method>` in the UI;
 * IPC channels `sources:<method>`; web mode: `/api/sources/<method>`).
 */
export interface SourcesApi {
  state(args: Record<string, never>): Promise<SourcesState>
  /** checks the URL and token with the server's /info, then remembers the server */
  addServer(args: { url: string; token: string }): Promise<ServerEntry>
  removeServer(args: { serverId: string }): Promise<SourcesState>
  /** downloads a server's metrics (a full copy) and opens it */
  pull(args: { serverId: string }): Promise<FileInfo>
  cancelPull(args: Record<string, never>): Promise<SourcesState>
  /** pulls what is new on the open dataset's servers and merges again */
  refresh(args: Record<string, never>): Promise<FileInfo>
  /** opens several files and/or servers as one dataset */
  open(args: { sources: SourceRef[] }): Promise<FileInfo>
  /** sets an endpoint's level in every source of the open dataset */
  setLevel(args: SetLevelArgs): Promise<LevelChange>
}

export type SourcesMethod = keyof SourcesApi
export type SourcesArgs<M extends SourcesMethod> = Parameters<SourcesApi[M]>[0]
export type SourcesResult<M extends SourcesMethod> = Awaited<ReturnType<SourcesApi[M]>>

/** The sources methods that are reads (GET in web mode); the others are POST. */
export const SOURCES_READ_METHODS: readonly SourcesMethod[] = ['state']
