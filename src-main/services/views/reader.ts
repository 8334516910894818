/*
 * The seam between the views and a storage engine: the reads each family of
 * views needs, in the product's terms. SqliteReader (one metrics file) is the
 * engine today; a second one (PostgreSQL) implements the same interface and
 * the views do not change.
 */
import type { EndpointRow, VersionRow } from 'routemeter/schema'
import type { ErrorRequest, OutlierSummary } from '../../api/contract.js'
import type { CompareOptions, Comparison } from 'routemeter/compare'

/**
 * Which requests a read covers: endpoint ids, and node ids (NO_ID for
 * requests without a node; undefined: every node).
 */
export interface Scope {
  endpointIds: readonly number[]
  nodeIds: readonly number[] | undefined
}

/** Counted rollup rows are per UTC day or per UTC hour. */
export type RollupUnit = 'day' | 'hour'

/** One rollup row: counts and durations of an endpoint, version and node in a day or hour. */
export type RollupRow = [
  endpointId: number,
  versionId: number,
  nodeId: number,
  requests: number,
  errors4xx: number,
  errors5xx: number,
  sumUs: number,
  minUs: number,
  maxUs: number,
  histogram: Uint8Array | undefined,
]

/** A request column the views read; ids of what a request has none of read as NO_ID. */
export type RequestColumn =
  | 'time'
  | 'endpoint_id'
  | 'version_id'
  | 'node_id'
  | 'user_group_id'
  | 'client_ip_id'
  | 'duration_us'
  | 'status'
  /** the requests a row stands for: more than 1 when rows beside it were sampled away (1 before schema 7) */
  | 'weight'

/** Users (`user`) or client IPs (`ip`). */
export type ClientKind = 'user' | 'ip'

/** One per-client rollup row of a day: a user's or an IP's requests of one version. */
export type ClientRollupRow = [
  clientId: number,
  versionId: number,
  requests: number,
  sumUs: number,
  minUs: number,
  maxUs: number,
  histogram: Uint8Array,
]

/** A request answered 4xx/5xx or left by its client, as the latest errors list it (aborted: 0/1). */
export type ErrorRow = Omit<ErrorRequest, 'aborted'> & { aborted: number }

/** An outlier as read, its context still JSON. */
/** An outlier as read; one read by id has its context and (level 3) its deflated profile. */
export type OutlierSummaryRow = OutlierSummary & { context?: string; profile?: Uint8Array | null }

export interface MetricsReader {
  /** where the metrics are read from, for messages */
  readonly path: string
  readonly schemaVersion: number
  /** bytes the store takes */
  size(): number
  /** brings counts that the store does not keep itself up to date (older files) */
  refreshRollups(): void

  endpoints(): EndpointRow[]
  endpoint(id: number): EndpointRow | undefined
  /** versions in the order they appeared */
  versions(): VersionRow[]
  nodes(): Array<{ id: number; name: string }>
  /** whether some requests were recorded without a node */
  hasRequestsWithoutNode(): boolean
  meta(): Map<string, string>
  /** every request counted in the rollups */
  requestCount(): number
  /** pages of the store in use and free, whether free ones go back to the disk, and the space per table */
  storage(): {
    usedBytes: number
    freeBytes: number
    incrementalVacuum: boolean
    tables: Array<{ name: string; bytes: number; rows: number }>
  }
  /**
   * From when raw rows (requests) are kept, ms since the epoch: older ones
   * were pruned by the retention policy (0: none were).
   */
  rawSince(): number
  /** start of the newest request of these endpoints, ms since the epoch (0: none) */
  newestRequest(endpointIds: readonly number[]): number
  /** the first and last UTC hour with requests of these endpoints; null when none */
  hourBounds(endpointIds: readonly number[]): { first: number | null; last: number | null }

  /** rollup rows of [from, to) in days or hours; histograms only when asked */
  rollups(
    unit: RollupUnit,
    scope: Scope,
    from: number,
    to: number,
    histograms: boolean,
  ): Iterable<RollupRow>
  /**
   * Requests of whole UTC hours [fromHour, toHour) summed per local bucket
   * (`(hour * MS_PER_HOUR + offsetMs) / unitMs`, rounded down), and per
   * endpoint and status where asked (0 otherwise). `allEndpoints`: the scope
   * is every endpoint, which the store may count in fewer rows.
   */
  hourlyCounts(
    scope: Scope,
    fromHour: number,
    toHour: number,
    buckets: { offsetMs: number; unitMs: number },
    by: { endpoint: boolean; status: boolean },
    allEndpoints: boolean,
  ): Iterable<[bucket: number, endpointId: number, status: number, requests: number]>
  /** requests with from <= time < to, as tuples of `columns` */
  requests<Row extends unknown[]>(
    columns: readonly RequestColumn[],
    scope: Scope,
    from: number,
    to: number,
  ): Iterable<Row>

  /** whether whole days of this kind of client are counted in rollups */
  hasClientRollups(kind: ClientKind): boolean
  /** requests per client (NO_ID: none) over whole UTC days [fromDay, toDay) */
  clientTotals(
    kind: ClientKind,
    scope: Scope,
    fromDay: number,
    toDay: number,
  ): Array<[number, number]>
  /** per-client rollup rows of [fromDay, toDay) for the clients given (NO_ID: none) */
  clientRollups(
    kind: ClientKind,
    scope: Scope,
    fromDay: number,
    toDay: number,
    clientIds: readonly number[],
  ): Iterable<ClientRollupRow>
  /**
   * [client, version, duration] of the requests with from <= time < to that
   * the per-client rollups do not count yet (the newest ones)
   */
  uncountedClientRequests(
    kind: ClientKind,
    scope: Scope,
    from: number,
    to: number,
  ): Iterable<[number, number, number]>
  clientName(kind: ClientKind, id: number): string | undefined
  clientId(kind: ClientKind, name: string): number | undefined

  /**
   * Level 3's profiles of an endpoint in [fromHour, toHour), on the nodes
   * given (all: undefined): [version id, samples, interval µs, tree]. None
   * before schema 9.
   */
  profiles(
    endpointId: number,
    nodeIds: readonly number[] | undefined,
    fromHour: number,
    toHour: number,
  ): Array<[number, number, number, Uint8Array]>
  /** what one release changed against another, per endpoint (routemeter/compare) */
  compareReleases(options: CompareOptions): Comparison

  /** whether the store keeps outliers (files of schema 6 and later) */
  hasOutliers(): boolean
  /** outliers per endpoint with from <= time < to */
  outlierCounts(scope: Scope, from: number, to: number): Array<[endpointId: number, count: number]>
  /** outliers with from <= time < to, newest first, `limit` from `offset` */
  outliers(
    scope: Scope,
    from: number,
    to: number,
    offset: number,
    limit: number,
  ): OutlierSummaryRow[]
  /** one outlier with its context (JSON); undefined when there is none with this id */
  outlier(id: number): OutlierSummaryRow | undefined

  /** the newest `limit` errors of one endpoint in [from, to), newest first */
  latestErrors(
    endpointId: number,
    nodeIds: readonly number[] | undefined,
    from: number,
    to: number,
    limit: number,
  ): ErrorRow[]
}
