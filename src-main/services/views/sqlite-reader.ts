/*
 * The views' reads from one metrics file (SQLite), on its read-only
 * connection: the rollup tables the collector keeps (collector/SCHEMA.md)
 * and, for the minutes no rollup holds whole, the requests themselves.
 */
import type Database from 'better-sqlite3'
import {
  ALL_ENDPOINTS,
  KEPT_SINCE_KEYS,
  NO_ID,
  type EndpointRow,
  type VersionRow,
} from 'routemeter/schema'
import { compareReleases, type CompareOptions, type Comparison } from 'routemeter/compare'
import type { MetricsConnection } from '../database.js'
import { MS_PER_HOUR } from '../stats.js'
import { UNKNOWN_NODE } from '../../api/contract.js'
import type {
  ClientKind,
  ClientRollupRow,
  ErrorRow,
  MetricsReader,
  OutlierSummaryRow,
  RequestColumn,
  RollupRow,
  RollupUnit,
  Scope,
} from './reader.js'

/** A Scope as bound parameters: JSON arrays that json_each() reads. */
interface ScopeParams {
  endpoints: string
  /** 1 when every node counts */
  allNodes: number
  nodes: string
}

function params(scope: Scope): ScopeParams {
  return {
    endpoints: JSON.stringify(scope.endpointIds),
    allNodes: scope.nodeIds === undefined ? 1 : 0,
    nodes: JSON.stringify(scope.nodeIds ?? []),
  }
}

const IN_ENDPOINTS = 'endpoint_id IN (SELECT value FROM json_each(@endpoints))'
const NODES = (column: string): string =>
  `(@allNodes OR ${column} IN (SELECT value FROM json_each(@nodes)))`

/** A request column as selected: ids a request may lack read as NO_ID. */
const COLUMN_SQL: Record<RequestColumn, string> = {
  time: 'time',
  endpoint_id: 'endpoint_id',
  version_id: 'version_id',
  node_id: `coalesce(node_id, ${NO_ID})`,
  user_group_id: `coalesce(user_group_id, ${NO_ID})`,
  client_ip_id: `coalesce(client_ip_id, ${NO_ID})`,
  duration_us: 'duration_us',
  status: 'status',
  weight: 'weight',
}

/** Schema 7 added request.weight; older requests each stand for one. */
const WEIGHT_SINCE = 7
/** the schema that has level 3's profile table */
const PROFILES_SINCE = 9
/** Schema 8 added version.tags. */
const TAGS_SINCE = 8

const CLIENT_SQL: Record<
  ClientKind,
  { column: string; rollup: string; names: string; name: string }
> = {
  user: {
    column: 'user_group_id',
    rollup: 'rollup_user_day',
    names: 'user_group',
    name: 'name',
  },
  ip: { column: 'client_ip_id', rollup: 'rollup_ip_day', names: 'client_ip', name: 'address' },
}

/** An outlier's columns as the API names them, with its version, user, IP and node. */
const OUTLIER_SELECT = `
  SELECT o.id, o.endpoint_id AS endpointId, o.time, o.duration_us AS durationUs,
         o.threshold_us AS thresholdUs, o.caught_us AS caughtUs, o.status, o.method, o.url,
         o.cause, o.cause_detail AS causeDetail, v.name AS version, g.name AS user,
         ip.address AS ip, coalesce(n.name, '${UNKNOWN_NODE}') AS node
  FROM outlier o
  JOIN version v ON v.id = o.version_id
  LEFT JOIN user_group g ON g.id = o.user_group_id
  LEFT JOIN client_ip ip ON ip.id = o.client_ip_id
  LEFT JOIN node n ON n.id = o.node_id`

/**
 * Id ranges [first, last], sorted by first, merged where they overlap or
 * touch: the rowid ranges to read, each request once.
 */
export function mergeSpans(
  spans: ReadonlyArray<readonly [number, number]>,
): Array<[number, number]> {
  const merged: Array<[number, number]> = []
  for (const [first, last] of spans) {
    const previous = merged[merged.length - 1]
    if (previous !== undefined && first <= previous[1] + 1) {
      if (last > previous[1]) previous[1] = last
    } else merged.push([first, last])
  }
  return merged
}

export class SqliteReader implements MetricsReader {
  private readonly db: Database.Database
  private readonly statements = new Map<string, Database.Statement>()

  constructor(private readonly connection: MetricsConnection) {
    this.db = connection.db
  }

  get path(): string {
    return this.connection.path
  }

  get schemaVersion(): number {
    return this.connection.schemaVersion
  }

  size(): number {
    return this.connection.size()
  }

  refreshRollups(): void {
    this.connection.refreshRollups()
  }

  /** Statements are prepared once per connection. */
  private sql(source: string): Database.Statement {
    let statement = this.statements.get(source)
    if (statement === undefined) {
      statement = this.db.prepare(source)
      this.statements.set(source, statement)
    }
    return statement
  }

  endpoints(): EndpointRow[] {
    return this.sql(
      'SELECT id, method, route, monitor_level, first_seen, last_requested FROM endpoint',
    ).all() as EndpointRow[]
  }

  endpoint(id: number): EndpointRow | undefined {
    return this.sql(
      'SELECT id, method, route, monitor_level, first_seen, last_requested FROM endpoint WHERE id = ?',
    ).get(id) as EndpointRow | undefined
  }

  versions(): VersionRow[] {
    return this.sql(
      `SELECT id, name, source, first_seen, ${this.schemaVersion >= TAGS_SINCE ? 'tags' : 'NULL AS tags'}
       FROM version ORDER BY first_seen, id`,
    ).all() as VersionRow[]
  }

  nodes(): Array<{ id: number; name: string }> {
    return this.sql('SELECT id, name FROM node').all() as Array<{ id: number; name: string }>
  }

  hasRequestsWithoutNode(): boolean {
    return this.sql(`SELECT 1 FROM rollup_day WHERE node_id = ${NO_ID} LIMIT 1`).get() !== undefined
  }

  meta(): Map<string, string> {
    const rows = this.sql('SELECT key, value FROM meta').all() as Array<{
      key: string
      value: string
    }>
    return new Map(rows.map((row) => [row.key, row.value]))
  }

  storage(): ReturnType<MetricsReader['storage']> {
    const pragma = (name: string) => Number(this.db.pragma(name, { simple: true }))
    const pageSize = pragma('page_size')
    const free = pragma('freelist_count')
    // dbstat reads every page: fine for a panel opened on demand, not for the live views.
    const tables = this.sql(
      `SELECT coalesce(s.tbl_name, d.name) AS name, sum(d.pgsize) AS bytes,
              sum(CASE WHEN d.pagetype = 'leaf' AND d.name = coalesce(s.tbl_name, d.name)
                       THEN d.ncell ELSE 0 END) AS rows
       FROM dbstat d LEFT JOIN sqlite_schema s ON s.name = d.name
       GROUP BY 1 ORDER BY bytes DESC`,
    ).all() as Array<{ name: string; bytes: number; rows: number }>
    return {
      usedBytes: (pragma('page_count') - free) * pageSize,
      freeBytes: free * pageSize,
      incrementalVacuum: pragma('auto_vacuum') === 2,
      tables,
    }
  }

  newestRequest(endpointIds: readonly number[]): number {
    // An endpoint's last_requested, where it falls in its newest hour of requests; else (a
    // file written without it) the end of that hour, which no request of it is later than.
    return this.sql(
      `SELECT coalesce(max(CASE WHEN e.last_requested >= h.hour * ${MS_PER_HOUR}
                                THEN e.last_requested ELSE (h.hour + 1) * ${MS_PER_HOUR} - 1 END), 0)
       FROM endpoint e
       JOIN (SELECT value AS id, (SELECT max(hour) FROM rollup_hour WHERE endpoint_id = value) AS hour
             FROM json_each(?)) h ON h.id = e.id
       WHERE h.hour IS NOT NULL`,
    )
      .pluck()
      .get(JSON.stringify(endpointIds)) as number
  }

  rawSince(): number {
    const value = this.sql('SELECT value FROM meta WHERE key = ?')
      .pluck()
      .get(KEPT_SINCE_KEYS.requests) as string | undefined
    return value === undefined ? 0 : Number(value) || 0
  }

  requestCount(): number {
    return this.sql('SELECT coalesce(sum(requests), 0) FROM rollup_day').pluck().get() as number
  }

  hourBounds(endpointIds: readonly number[]): { first: number | null; last: number | null } {
    // A step in rollup_hour's key per endpoint.
    return this.sql(
      `SELECT min(first) AS first, max(last) AS last FROM (
         SELECT (SELECT min(hour) FROM rollup_hour WHERE endpoint_id = e.value) AS first,
                (SELECT max(hour) FROM rollup_hour WHERE endpoint_id = e.value) AS last
         FROM json_each(@endpoints) e)`,
    ).get({ endpoints: JSON.stringify(endpointIds) }) as {
      first: number | null
      last: number | null
    }
  }

  rollups(
    unit: RollupUnit,
    scope: Scope,
    from: number,
    to: number,
    histograms: boolean,
  ): Iterable<RollupRow> {
    return this.sql(
      `SELECT endpoint_id, version_id, node_id, requests, errors_4xx, errors_5xx,
              sum_us, min_us, max_us${histograms ? ', histogram' : ''}
       FROM rollup_${unit}
       WHERE ${IN_ENDPOINTS} AND ${unit} >= @from AND ${unit} < @to AND ${NODES('node_id')}`,
    )
      .raw()
      .iterate({ ...params(scope), from, to }) as IterableIterator<RollupRow>
  }

  hourlyCounts(
    scope: Scope,
    fromHour: number,
    toHour: number,
    buckets: { offsetMs: number; unitMs: number },
    by: { endpoint: boolean; status: boolean },
    allEndpoints: boolean,
  ): Iterable<[number, number, number, number]> {
    const endpoint = by.endpoint ? 'endpoint_id' : '0'
    const status = by.status ? 'status' : '0'
    // Over every endpoint, rollup_status has rows that count them all (endpoint_id 0).
    const together = allEndpoints && !by.endpoint
    const table = together || by.status ? 'rollup_status' : 'rollup_hour'
    const bound = params(together ? { ...scope, endpointIds: [ALL_ENDPOINTS] } : scope)
    return this.sql(
      `SELECT (hour * ${MS_PER_HOUR} + CAST(@offset AS INTEGER)) / CAST(@unit AS INTEGER) AS bucket,
              ${endpoint}, ${status}, sum(requests)
       FROM ${table}
       WHERE ${IN_ENDPOINTS} AND hour >= @from AND hour < @to AND ${NODES('node_id')}
       GROUP BY 1, 2, 3`,
    )
      .raw()
      .iterate({
        ...bound,
        from: fromHour,
        to: toHour,
        offset: buckets.offsetMs,
        unit: buckets.unitMs,
      }) as IterableIterator<[number, number, number, number]>
  }

  /**
   * A schema-5 file has no index on the requests' endpoint and time: the ids
   * of an endpoint's requests in an hour lie between rollup_hour's first_id
   * and last_id, so those spans, merged, are read as rowid ranges (with the
   * other endpoints' requests between them, left out by the WHERE). Older
   * files are read through their index (endpoint_id, time).
   */
  requests<Row extends unknown[]>(
    columns: readonly RequestColumn[],
    scope: Scope,
    from: number,
    to: number,
  ): Iterable<Row> {
    const selected = columns
      .map((column) =>
        column === 'weight' && this.schemaVersion < WEIGHT_SINCE ? '1' : COLUMN_SQL[column],
      )
      .join(', ')
    const where = `${IN_ENDPOINTS} AND time >= @from AND time < @to
      AND ${NODES(`coalesce(node_id, ${NO_ID})`)}`
    const args = { ...params(scope), from, to }
    if (!this.connection.hasRequestSpans) {
      return this.sql(`SELECT ${selected} FROM request WHERE ${where}`)
        .raw()
        .iterate(args) as IterableIterator<Row>
    }
    const spans = this.sql(
      `SELECT first_id, last_id FROM rollup_hour
       WHERE ${IN_ENDPOINTS} AND hour >= @fromHour AND hour < @endHour AND ${NODES('node_id')}
         AND first_id IS NOT NULL
       ORDER BY first_id`,
    )
      .raw()
      .all({
        ...args,
        fromHour: Math.floor(from / MS_PER_HOUR),
        endHour: Math.ceil(to / MS_PER_HOUR),
      }) as Array<[number, number]>
    const statement = this.sql(
      `SELECT ${selected} FROM request NOT INDEXED WHERE id BETWEEN @first AND @last AND ${where}`,
    ).raw()
    return (function* () {
      // Spans of several endpoints, versions and nodes overlap: each request is read once.
      for (const [first, last] of mergeSpans(spans)) {
        yield* statement.iterate({ ...args, first, last }) as IterableIterator<Row>
      }
    })()
  }

  hasClientRollups(kind: ClientKind): boolean {
    // A schema 3 file has no rollup_ip_day: its IP view reads the requests.
    return kind === 'user' || this.connection.hasIpRollups
  }

  clientTotals(
    kind: ClientKind,
    scope: Scope,
    fromDay: number,
    toDay: number,
  ): Array<[number, number]> {
    const { column, rollup } = CLIENT_SQL[kind]
    return this.sql(
      `SELECT ${column}, sum(requests) FROM ${rollup}
       WHERE ${IN_ENDPOINTS} AND day >= @from AND day < @to AND ${NODES('node_id')}
       GROUP BY ${column}`,
    )
      .raw()
      .all({ ...params(scope), from: fromDay, to: toDay }) as Array<[number, number]>
  }

  clientRollups(
    kind: ClientKind,
    scope: Scope,
    fromDay: number,
    toDay: number,
    clientIds: readonly number[],
  ): Iterable<ClientRollupRow> {
    const { column, rollup } = CLIENT_SQL[kind]
    return this.sql(
      `SELECT ${column}, version_id, requests, sum_us, min_us, max_us, histogram
       FROM ${rollup}
       WHERE ${IN_ENDPOINTS} AND day >= @from AND day < @to AND ${NODES('node_id')}
         AND ${column} IN (SELECT value FROM json_each(@clients))`,
    )
      .raw()
      .iterate({
        ...params(scope),
        from: fromDay,
        to: toDay,
        clients: JSON.stringify(clientIds),
      }) as IterableIterator<ClientRollupRow>
  }

  uncountedClientRequests(
    kind: ClientKind,
    scope: Scope,
    from: number,
    to: number,
  ): Iterable<[number, number, number]> {
    const { column } = CLIENT_SQL[kind]
    // At most USER_ROLLUP_ROWS, found by id: NOT INDEXED keeps SQLite on the rowid range.
    return this.sql(
      `SELECT coalesce(${column}, ${NO_ID}), version_id, duration_us
       FROM request NOT INDEXED
       WHERE id > @after AND ${IN_ENDPOINTS} AND time >= @from AND time < @to
         AND ${NODES(`coalesce(node_id, ${NO_ID})`)}`,
    )
      .raw()
      .iterate({
        ...params(scope),
        after: this.connection.userRollupsThrough(),
        from,
        to,
      }) as IterableIterator<[number, number, number]>
  }

  clientName(kind: ClientKind, id: number): string | undefined {
    const { names, name } = CLIENT_SQL[kind]
    return this.sql(`SELECT ${name} FROM ${names} WHERE id = ?`).pluck().get(id) as
      string | undefined
  }

  clientId(kind: ClientKind, name: string): number | undefined {
    const { names, name: column } = CLIENT_SQL[kind]
    return this.sql(`SELECT id FROM ${names} WHERE ${column} = ?`).pluck().get(name) as
      number | undefined
  }

  compareReleases(options: CompareOptions): Comparison {
    return compareReleases(this.db, options)
  }

  hasOutliers(): boolean {
    return this.schemaVersion >= 6
  }

  profiles(
    endpointId: number,
    nodeIds: readonly number[] | undefined,
    fromHour: number,
    toHour: number,
  ): Array<[number, number, number, Uint8Array]> {
    if (this.schemaVersion < PROFILES_SINCE) return []
    return this.sql(
      `SELECT version_id, samples, interval_us, tree FROM profile
       WHERE endpoint_id = @endpointId AND hour >= @fromHour AND hour < @toHour
         AND ${NODES('node_id')}`,
    )
      .raw()
      .all({
        allNodes: nodeIds === undefined ? 1 : 0,
        nodes: JSON.stringify(nodeIds ?? []),
        endpointId,
        fromHour,
        toHour,
      }) as Array<[number, number, number, Uint8Array]>
  }

  outlierCounts(scope: Scope, from: number, to: number): Array<[number, number]> {
    if (!this.hasOutliers()) return []
    return this.sql(
      `SELECT endpoint_id, count(*) FROM outlier
       WHERE ${IN_ENDPOINTS} AND time >= @from AND time < @to
         AND ${NODES(`coalesce(node_id, ${NO_ID})`)}
       GROUP BY endpoint_id`,
    )
      .raw()
      .all({ ...params(scope), from, to }) as Array<[number, number]>
  }

  outliers(
    scope: Scope,
    from: number,
    to: number,
    offset: number,
    limit: number,
  ): OutlierSummaryRow[] {
    if (!this.hasOutliers()) return []
    return this.sql(
      `${OUTLIER_SELECT}
       WHERE o.${IN_ENDPOINTS} AND o.time >= @from AND o.time < @to
         AND ${NODES(`coalesce(o.node_id, ${NO_ID})`)}
       ORDER BY o.time DESC, o.id DESC LIMIT @limit OFFSET @offset`,
    ).all({ ...params(scope), from, to, limit, offset }) as OutlierSummaryRow[]
  }

  outlier(id: number): OutlierSummaryRow | undefined {
    if (!this.hasOutliers()) return undefined
    const extra = this.schemaVersion >= PROFILES_SINCE ? 'o.context, o.profile,' : 'o.context,'
    return this.sql(`${OUTLIER_SELECT.replace('SELECT', `SELECT ${extra}`)} WHERE o.id = ?`).get(
      id,
    ) as OutlierSummaryRow | undefined
  }

  latestErrors(
    endpointId: number,
    nodeIds: readonly number[] | undefined,
    from: number,
    to: number,
    limit: number,
  ): ErrorRow[] {
    // Each query walks one endpoint's errors backwards (schema 5: a partial index of errors).
    const { allNodes, nodes } = params({ endpointIds: [], nodeIds })
    return this.sql(
      `SELECT r.id, r.endpoint_id AS endpointId, r.time, r.duration_us AS durationUs, r.status,
              v.name AS version, g.name AS user, ip.address AS ip, r.aborted
       FROM request r
       JOIN version v ON v.id = r.version_id
       LEFT JOIN user_group g ON g.id = r.user_group_id
       LEFT JOIN client_ip ip ON ip.id = r.client_ip_id
       WHERE r.endpoint_id = @endpoint AND r.time >= @from AND r.time < @to
         AND (r.status >= 400 OR r.aborted = 1) AND ${NODES(`coalesce(r.node_id, ${NO_ID})`)}
       ORDER BY r.time DESC, r.id DESC LIMIT @limit`,
    ).all({ endpoint: endpointId, from, to, limit, allNodes, nodes }) as ErrorRow[]
  }
}
