/**
 * The views' queries on one read-only connection. Arguments arrive
 * validated. SQLite counts and buckets; medians, percentiles and box plots
 * are computed in JS (stats.ts) over durations fetched one number per row.
 *
 * Most queries run once per endpoint: with `endpoint_id = ?` first, the
 * index request (endpoint_id, time) serves the time range, and covers the
 * counting queries entirely.
 */
import type Database from 'better-sqlite3'
import type { EndpointRow, VersionRow } from 'routemeter/schema'
import type {
  ClientArgs,
  ClientBreakdown,
  EndpointArgs,
  EndpointBox,
  ErrorRequest,
  FileInfo,
  HeatmapArgs,
  HourHeatmap,
  NodeArgs,
  NodeShare,
  OverviewRow,
  PeriodStats,
  RangeArgs,
  StatusArgs,
  StatusCodes,
  Utilization,
  Version,
  VersionEvolution,
  VersionUtilization,
} from '../api/contract.js'
import { UNKNOWN_NODE } from '../api/contract.js'
import { badArgument } from '../api/errors.js'
import { DEFAULT_CLIENT_LIMIT, DEFAULT_ERROR_LIMIT } from '../api/validate.js'
import { DEMO_META_KEY, toEndpoint, type MetricsConnection } from './database.js'
import {
  boxStats,
  daysOfRange,
  DurationList,
  medianAndP95,
  MS_PER_DAY,
  offsetMs,
  startOfLocalDay,
} from './stats.js'

/** How `clients` names requests without a user or an IP. */
export const NO_CLIENT = '(none)'
/** Most clients listed in `available`. */
const MAX_AVAILABLE = 500
/** Larger than any time: "since midnight" and "the last 7 days" include later clock skew. */
const END_OF_TIME = Number.MAX_SAFE_INTEGER

/*
 * Overview rows come back as one number: duration × 4 + status class
 * (1 = 4xx, 2 = 5xx). better-sqlite3 builds an array per row for several
 * columns; one plucked number per row is three times faster and takes 8
 * bytes. Durations are capped at 2^50 µs (35 years) to stay exact.
 */
const PACKED_DURATION_CAP = 2 ** 50 - 1

function version(row: VersionRow): Version {
  return { id: row.id, name: row.name, source: row.source, firstSeen: row.first_seen }
}

function zeros(length: number): number[] {
  return new Array<number>(length).fill(0)
}

/** Orders endpoints by route then method, the request-less catch-all last. */
function byRoute(a: EndpointRow, b: EndpointRow): number {
  const unmatched = Number(a.route.startsWith('(')) - Number(b.route.startsWith('('))
  if (unmatched !== 0) return unmatched
  return a.route < b.route ? -1 : a.route > b.route ? 1 : a.method < b.method ? -1 : 1
}

export class MetricsQueries {
  private readonly db: Database.Database
  private readonly statements = new Map<string, Database.Statement>()

  constructor(
    private readonly connection: MetricsConnection,
    private readonly now: () => number,
  ) {
    this.db = connection.db
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

  private endpointRows(): EndpointRow[] {
    return this.sql(
      'SELECT id, method, route, monitor_level, first_seen, last_requested FROM endpoint',
    ).all() as EndpointRow[]
  }

  /** The endpoints a query covers: the selection (unknown ids ignored), or all. */
  private scope(args: RangeArgs): EndpointRow[] {
    const rows = this.endpointRows()
    if (args.endpointIds === undefined || args.endpointIds.length === 0) return rows
    const selected = new Set(args.endpointIds)
    return rows.filter((row) => selected.has(row.id))
  }

  /** One endpoint that must exist. */
  private endpointRow(endpointId: number): EndpointRow {
    const row = this.sql(
      'SELECT id, method, route, monitor_level, first_seen, last_requested FROM endpoint WHERE id = ?',
    ).get(endpointId) as EndpointRow | undefined
    if (row === undefined) {
      throw badArgument(`there is no endpoint with id ${endpointId} in this file`)
    }
    return row
  }

  /** `endpointId` when given, else the range's selection. */
  private optionalEndpointScope(args: StatusArgs): EndpointRow[] {
    return args.endpointId === undefined ? this.scope(args) : [this.endpointRow(args.endpointId)]
  }

  private versions(): Map<number, VersionRow> {
    const rows = this.sql(
      'SELECT id, name, source, first_seen FROM version ORDER BY first_seen, id',
    ).all() as VersionRow[]
    return new Map(rows.map((row) => [row.id, row]))
  }

  /** The given version ids as versions, in the order they appeared. */
  private versionList(ids: Iterable<number>): Version[] {
    const wanted = new Set(ids)
    return [...this.versions().values()].filter((row) => wanted.has(row.id)).map(version)
  }

  /** Node ids by name; requests without a node are UNKNOWN_NODE. */
  private nodeIds(): Map<string, number> {
    const rows = this.sql('SELECT id, name FROM node').all() as Array<{ id: number; name: string }>
    return new Map(rows.map((row) => [row.name, row.id]))
  }

  /** The `nodes` filter as an SQL condition on request.node_id ('' when absent). */
  private nodeFilter(args: RangeArgs): string {
    if (args.nodes === undefined || args.nodes.length === 0) return ''
    const ids = this.nodeIds()
    // Ids come from the file, never from the caller: safe to write into the SQL.
    const known = args.nodes.flatMap((name) => (ids.has(name) ? [ids.get(name)!] : []))
    const conditions = known.length > 0 ? [`node_id IN (${known.join(',')})`] : []
    if (args.nodes.includes(UNKNOWN_NODE)) conditions.push('node_id IS NULL')
    return ` AND (${conditions.length > 0 ? conditions.join(' OR ') : '0'})`
  }

  /** Names of the nodes that wrote requests, UNKNOWN_NODE last if some requests have none. */
  private nodeNames(): string[] {
    const names = [...this.nodeIds().keys()].sort()
    const unknown = this.sql('SELECT 1 FROM request WHERE node_id IS NULL LIMIT 1').get()
    return unknown === undefined ? names : [...names, UNKNOWN_NODE]
  }

  info(): FileInfo {
    const counts = this.sql(
      'SELECT count(*) AS requests, min(time) AS first, max(time) AS last FROM request',
    ).get() as { requests: number; first: number | null; last: number | null }
    const meta = new Map(
      (this.sql('SELECT key, value FROM meta').all() as Array<{ key: string; value: string }>).map(
        (row) => [row.key, row.value],
      ),
    )
    const createdAt = Number(meta.get('created_at'))
    return {
      path: this.connection.path,
      sizeBytes: this.connection.size(),
      schemaVersion: this.connection.schemaVersion,
      requestCount: counts.requests,
      endpointCount: this.sql('SELECT count(*) FROM endpoint').pluck().get() as number,
      firstRequest: counts.first,
      lastRequest: counts.last,
      createdAt: Number.isFinite(createdAt) && meta.has('created_at') ? createdAt : null,
      demo: meta.get(DEMO_META_KEY) === '1',
      nodes: this.nodeNames(),
    }
  }

  private periodStats(endpointId: number, from: number, to: number, nodes: string): PeriodStats {
    const packed = this.sql(
      `SELECT min(duration_us, ${PACKED_DURATION_CAP}) * 4
              + CASE WHEN status BETWEEN 400 AND 499 THEN 1 WHEN status BETWEEN 500 AND 599 THEN 2 ELSE 0 END
       FROM request WHERE endpoint_id = ? AND time >= ? AND time < ?${nodes}`,
    )
      .pluck()
      .all(endpointId, from, to) as number[]
    const durations = new Float64Array(packed.length)
    let errors4xx = 0
    let errors5xx = 0
    for (let i = 0; i < packed.length; i++) {
      const value = packed[i]!
      const statusClass = value % 4
      if (statusClass === 1) errors4xx++
      else if (statusClass === 2) errors5xx++
      durations[i] = (value - statusClass) / 4
    }
    return { hits: packed.length, errors4xx, errors5xx, ...medianAndP95(durations.sort()) }
  }

  /** Every endpoint in scope, by route, with or without requests. */
  endpoints(args: RangeArgs): OverviewRow[] {
    const nodes = this.nodeFilter(args)
    const now = this.now()
    const today = startOfLocalDay(now, args.utcOffsetMinutes)
    const weekAgo = now - 7 * MS_PER_DAY
    return this.scope(args)
      .sort(byRoute)
      .map((row) => ({
        ...toEndpoint(row),
        today: this.periodStats(row.id, today, END_OF_TIME, nodes),
        week: this.periodStats(row.id, weekAgo, END_OF_TIME, nodes),
        range: this.periodStats(row.id, args.from, args.to, nodes),
      }))
  }

  /** Series of the endpoints with requests (and of selected ones without), busiest first. */
  utilization(args: RangeArgs): Utilization {
    const nodes = this.nodeFilter(args)
    const { firstDay, days } = daysOfRange(args.from, args.to, args.utcOffsetMinutes)
    const perDay = this.sql(
      `SELECT (time + CAST(? AS INTEGER)) / ${MS_PER_DAY} AS day, count(*) AS n
       FROM request WHERE endpoint_id = ? AND time >= ? AND time < ?${nodes} GROUP BY day`,
    )
    const explicit = (args.endpointIds?.length ?? 0) > 0
    const series: Array<{ endpointId: number; counts: number[]; total: number }> = []
    for (const endpoint of this.scope(args)) {
      const counts = zeros(days.length)
      let total = 0
      const rows = perDay.all(offsetMs(args.utcOffsetMinutes), endpoint.id, args.from, args.to)
      for (const { day, n } of rows as Array<{ day: number; n: number }>) {
        counts[day - firstDay] = n
        total += n
      }
      // A selected endpoint is shown even without requests; otherwise only busy ones.
      if (total > 0 || explicit) series.push({ endpointId: endpoint.id, counts, total })
    }
    series.sort((a, b) => b.total - a.total || a.endpointId - b.endpointId)
    return { days, series: series.map(({ endpointId, counts }) => ({ endpointId, counts })) }
  }

  hourHeatmap(args: HeatmapArgs): HourHeatmap {
    const nodes = this.nodeFilter(args)
    const { firstDay, days } = daysOfRange(args.from, args.to, args.utcOffsetMinutes)
    const counts = Array.from({ length: 24 }, () => zeros(days.length))
    const perHour = this.sql(
      `SELECT (time + CAST(? AS INTEGER)) / 3600000 AS hour, count(*) AS n
       FROM request WHERE endpoint_id = ? AND time >= ? AND time < ?${nodes} GROUP BY hour`,
    )
    for (const endpoint of this.optionalEndpointScope(args)) {
      const rows = perHour.all(offsetMs(args.utcOffsetMinutes), endpoint.id, args.from, args.to)
      for (const { hour, n } of rows as Array<{ hour: number; n: number }>) {
        counts[hour % 24]![Math.floor(hour / 24) - firstDay]! += n
      }
    }
    return { days, counts }
  }

  private durations(endpointId: number, from: number, to: number, nodes: string): Float64Array {
    const values = this.sql(
      `SELECT duration_us FROM request WHERE endpoint_id = ? AND time >= ? AND time < ?${nodes}`,
    )
      .pluck()
      .all(endpointId, from, to) as number[]
    return Float64Array.from(values).sort()
  }

  /** Box per endpoint with requests in range, slowest median first. */
  performance(args: RangeArgs): EndpointBox[] {
    const nodes = this.nodeFilter(args)
    const boxes: EndpointBox[] = []
    for (const endpoint of this.scope(args)) {
      const stats = boxStats(this.durations(endpoint.id, args.from, args.to, nodes))
      if (stats !== null) boxes.push({ endpointId: endpoint.id, stats })
    }
    return boxes.sort((a, b) => b.stats.median - a.stats.median || a.endpointId - b.endpointId)
  }

  /** Ids of the versions with requests in range, among the endpoints in scope. */
  private versionsInRange(
    endpoints: EndpointRow[],
    from: number,
    to: number,
    nodes: string,
  ): Set<number> {
    const present = new Set<number>()
    const distinct = this.sql(
      `SELECT DISTINCT version_id FROM request WHERE endpoint_id = ? AND time >= ? AND time < ?${nodes}`,
    ).pluck()
    for (const endpoint of endpoints) {
      for (const id of distinct.all(endpoint.id, from, to) as number[]) present.add(id)
    }
    return present
  }

  versionEvolution(args: EndpointArgs): VersionEvolution {
    const nodes = this.nodeFilter(args)
    this.endpointRow(args.endpointId)
    const byVersion = new Map<number, DurationList>()
    const rows = this.sql(
      `SELECT version_id, duration_us FROM request WHERE endpoint_id = ? AND time >= ? AND time < ?${nodes}`,
    )
      .raw()
      .iterate(args.endpointId, args.from, args.to) as IterableIterator<[number, number]>
    for (const [versionId, duration] of rows) {
      let list = byVersion.get(versionId)
      if (list === undefined) byVersion.set(versionId, (list = new DurationList()))
      list.push(duration)
    }
    const ids = this.versionsInRange(this.scope(args), args.from, args.to, nodes)
    for (const id of byVersion.keys()) ids.add(id)
    const versions = this.versionList(ids)
    const boxes = versions.map((v) => {
      const list = byVersion.get(v.id)
      return list === undefined ? null : boxStats(list.sorted())
    })
    return { versions, boxes }
  }

  /** Endpoints with requests in range, by id; versions by first seen. */
  versionUtilization(args: RangeArgs): VersionUtilization {
    const nodes = this.nodeFilter(args)
    const perVersion = this.sql(
      `SELECT version_id AS versionId, count(*) AS n
       FROM request WHERE endpoint_id = ? AND time >= ? AND time < ?${nodes} GROUP BY version_id`,
    )
    const counts = new Map<number, Map<number, number>>()
    const endpointIds: number[] = []
    for (const endpoint of this.scope(args)) {
      const rows = perVersion.all(endpoint.id, args.from, args.to) as Array<{
        versionId: number
        n: number
      }>
      if (rows.length === 0) continue
      endpointIds.push(endpoint.id)
      for (const { versionId, n } of rows) {
        let perEndpoint = counts.get(versionId)
        if (perEndpoint === undefined) counts.set(versionId, (perEndpoint = new Map()))
        perEndpoint.set(endpoint.id, n)
      }
    }
    const versions = this.versionList(counts.keys())
    return {
      versions,
      endpointIds,
      counts: versions.map((v) => endpointIds.map((id) => counts.get(v.id)?.get(id) ?? 0)),
    }
  }

  /**
   * Users or IPs of one endpoint. Chosen names must be among the 500 busiest
   * (`available`) to be shown; unknown ones are left out.
   */
  clients(args: ClientArgs): ClientBreakdown {
    const nodes = this.nodeFilter(args)
    this.endpointRow(args.endpointId)
    const column = args.kind === 'user' ? 'user_group_id' : 'client_ip_id'
    const names =
      args.kind === 'user'
        ? 'SELECT id, name FROM user_group WHERE id = ?'
        : 'SELECT id, address AS name FROM client_ip WHERE id = ?'
    const byName =
      args.kind === 'user'
        ? 'SELECT id FROM user_group WHERE name = ?'
        : 'SELECT id FROM client_ip WHERE address = ?'
    const nameOf = (id: number | null): string =>
      id === null
        ? NO_CLIENT
        : ((this.sql(names).get(id) as { name: string } | undefined)?.name ?? `#${id}`)

    const busiest = this.sql(
      `SELECT ${column} AS id, count(*) AS n FROM request
       WHERE endpoint_id = ? AND time >= ? AND time < ?${nodes}
       GROUP BY ${column} ORDER BY n DESC, ${column} LIMIT ${MAX_AVAILABLE}`,
    ).all(args.endpointId, args.from, args.to) as Array<{ id: number | null; n: number }>
    const available = busiest.map((row) => ({ name: nameOf(row.id), count: row.n }))

    // The clients to show, as ids (null: requests without one), busiest first.
    let shown: Array<number | null>
    if (args.names === undefined) {
      shown = busiest.slice(0, args.limit ?? DEFAULT_CLIENT_LIMIT).map((row) => row.id)
    } else {
      const wanted = new Set<number | null>()
      for (const name of args.names) {
        if (name === NO_CLIENT) wanted.add(null)
        const id = this.sql(byName).pluck().get(name) as number | undefined
        if (id !== undefined) wanted.add(id)
      }
      const rank = new Map(busiest.map((row, i) => [row.id, i]))
      shown = [...wanted].filter((id) => rank.has(id)).sort((a, b) => rank.get(a)! - rank.get(b)!)
    }

    const index = new Map(shown.map((id, i) => [id, i]))
    const all = shown.map(() => new DurationList())
    const byVersion = shown.map(() => new Map<number, DurationList>())
    const rows = this.sql(
      `SELECT ${column}, version_id, duration_us FROM request
       WHERE endpoint_id = ? AND time >= ? AND time < ?${nodes}`,
    )
      .raw()
      .iterate(args.endpointId, args.from, args.to) as IterableIterator<
      [number | null, number, number]
    >
    for (const [client, versionId, duration] of rows) {
      const i = index.get(client)
      if (i === undefined) continue
      all[i]!.push(duration)
      let list = byVersion[i]!.get(versionId)
      if (list === undefined) byVersion[i]!.set(versionId, (list = new DurationList()))
      list.push(duration)
    }

    const versions = this.versionList(byVersion.flatMap((m) => [...m.keys()]))
    return {
      available,
      clients: shown.flatMap((id, i) => {
        const stats = boxStats(all[i]!.sorted())
        return stats === null ? [] : [{ name: nameOf(id), stats }]
      }),
      versions,
      medianUs: byVersion.map((perVersion) =>
        versions.map((v) => {
          const list = perVersion.get(v.id)
          return list === undefined ? null : medianAndP95(list.sorted()).medianUs
        }),
      ),
    }
  }

  statusCodes(args: StatusArgs): StatusCodes {
    const nodes = this.nodeFilter(args)
    const { firstDay, days } = daysOfRange(args.from, args.to, args.utcOffsetMinutes)
    const perDay = this.sql(
      `SELECT status, (time + CAST(? AS INTEGER)) / ${MS_PER_DAY} AS day, count(*) AS n
       FROM request WHERE endpoint_id = ? AND time >= ? AND time < ?${nodes} GROUP BY status, day`,
    )
    const series = new Map<number, { counts: number[]; total: number }>()
    for (const endpoint of this.optionalEndpointScope(args)) {
      const rows = perDay.all(offsetMs(args.utcOffsetMinutes), endpoint.id, args.from, args.to)
      for (const { status, day, n } of rows as Array<{ status: number; day: number; n: number }>) {
        let entry = series.get(status)
        if (entry === undefined)
          series.set(status, (entry = { counts: zeros(days.length), total: 0 }))
        entry.counts[day - firstDay]! += n
        entry.total += n
      }
    }
    return {
      days,
      series: [...series.entries()]
        .sort(([a, x], [b, y]) => y.total - x.total || a - b)
        .map(([status, { counts }]) => ({ status, counts })),
    }
  }

  /** Requests answered 4xx/5xx or left by their client, newest first. */
  latestErrors(args: StatusArgs & { limit?: number }): ErrorRequest[] {
    const nodes = this.nodeFilter(args)
    const limit = args.limit ?? DEFAULT_ERROR_LIMIT
    const newest = this.sql(
      `SELECT r.id, r.endpoint_id AS endpointId, r.time, r.duration_us AS durationUs, r.status,
              v.name AS version, g.name AS user, ip.address AS ip, r.aborted
       FROM request r
       JOIN version v ON v.id = r.version_id
       LEFT JOIN user_group g ON g.id = r.user_group_id
       LEFT JOIN client_ip ip ON ip.id = r.client_ip_id
       WHERE r.endpoint_id = ? AND r.time >= ? AND r.time < ?${nodes.replaceAll('node_id', 'r.node_id')} AND (r.status >= 400 OR r.aborted = 1)
       ORDER BY r.time DESC, r.id DESC LIMIT ?`,
    )
    type Row = Omit<ErrorRequest, 'aborted'> & { aborted: number }
    // The newest `limit` of each endpoint, merged: each query walks one endpoint's index backwards.
    const found: Row[] = []
    for (const endpoint of this.optionalEndpointScope(args)) {
      found.push(...(newest.all(endpoint.id, args.from, args.to, limit) as Row[]))
    }
    return found
      .sort((a, b) => b.time - a.time || b.id - a.id)
      .slice(0, limit)
      .map((row) => ({ ...row, aborted: row.aborted === 1 }))
  }

  /** Hits, errors and durations per node, busiest first; every node in scope, even without requests. */
  nodeBreakdown(args: NodeArgs): NodeShare[] {
    const ids = this.nodeIds()
    const wanted =
      args.nodes === undefined || args.nodes.length === 0 ? this.nodeNames() : args.nodes
    const names = new Map<number | null, string>()
    for (const name of wanted) {
      if (name === UNKNOWN_NODE) names.set(null, name)
      else if (ids.has(name)) names.set(ids.get(name)!, name)
    }
    const perNode = new Map<number | null, { durations: DurationList; e4: number; e5: number }>()
    for (const id of names.keys()) perNode.set(id, { durations: new DurationList(), e4: 0, e5: 0 })
    const nodes = this.nodeFilter(args)
    const rows = this.sql(
      `SELECT node_id, duration_us, status FROM request
       WHERE endpoint_id = ? AND time >= ? AND time < ?${nodes}`,
    ).raw()
    for (const endpoint of this.optionalEndpointScope(args)) {
      const found = rows.iterate(endpoint.id, args.from, args.to) as IterableIterator<
        [number | null, number, number]
      >
      for (const [node, duration, status] of found) {
        const entry = perNode.get(node)
        if (entry === undefined) continue
        entry.durations.push(duration)
        if (status >= 400 && status < 500) entry.e4++
        else if (status >= 500 && status < 600) entry.e5++
      }
    }
    return [...names.entries()]
      .map(([id, node]) => {
        const entry = perNode.get(id)!
        return {
          node,
          hits: entry.durations.length,
          errors4xx: entry.e4,
          errors5xx: entry.e5,
          stats: boxStats(entry.durations.sorted()),
        }
      })
      .sort((a, b) => b.hits - a.hits || (a.node < b.node ? -1 : 1))
  }
}
