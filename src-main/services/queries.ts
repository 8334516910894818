/**
 * The views' queries on one read-only connection. Arguments arrive
 * validated.
 *
 * Most views read the rollup tables that the collector's writer keeps
 * (collector/SCHEMA.md), not the requests: a range [from, to) is cut into
 * whole UTC days (rollup_day), whole UTC hours at its ends (rollup_hour) and
 * the minutes before the first and after the last whole hour, read from the
 * requests themselves (found through rollup_hour's id spans in a schema-5
 * file, through the index request (endpoint_id, time) in older ones; see
 * rawRequests). So no range is
 * snapped: counts are exact for any range, and quantiles come from the
 * rollups' duration histograms, within QUANTILE_RELATIVE_ERROR (4.5%) of the
 * exact value (stats.ts, DurationSummary).
 *
 * The views by local day or hour (utilization, hour heatmap, status codes)
 * count whole UTC hours from rollup_status: each request counts in the
 * local hour, and day, in which its UTC hour starts. With a UTC offset of
 * whole hours that is exact; with one that is not (+5:30, +5:45, -9:30)
 * requests move up to 45 minutes earlier (a request at 23:50 local time in
 * +5:30 counts in the hour 23:30-00:30 that starts the day before).
 *
 * Raw requests remain the source of the latest errors (schema 5: through a
 * partial index on the requests that are errors), which no rollup keeps.
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
import { DEMO_META_KEY, isCorruption, toEndpoint, type MetricsConnection } from './database.js'
import {
  daysOfRange,
  DurationSummary,
  MS_PER_DAY,
  MS_PER_HOUR,
  offsetMs,
  startOfLocalDay,
} from './stats.js'

/** How `clients` names requests without a user or an IP. */
export const NO_CLIENT = '(none)'
/** Most clients listed in `available`. */
const MAX_AVAILABLE = 500
/** Larger than any time: "since midnight" and "the last 7 days" include later clock skew. */
const END_OF_TIME = Number.MAX_SAFE_INTEGER
/** node_id and user_group_id of rollup rows whose requests have none. */
const NO_ID = 0
/** endpoint_id of the rollup_status rows that count every endpoint (collector: ALL_ENDPOINTS). */
const ALL_ENDPOINTS = 0

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

/**
 * [from, to) cut into whole UTC days, whole UTC hours and the rest: each
 * part read from the coarsest source that holds it exactly.
 */
export interface RangeParts {
  /** [first, end) day numbers for rollup_day */
  days: Array<[number, number]>
  /** [first, end) hour numbers for rollup_hour */
  hours: Array<[number, number]>
  /** [from, to) ms for the request table */
  raw: Array<[number, number]>
}

export function rangeParts(from: number, to: number, hoursPerDay = 24): RangeParts {
  const parts: RangeParts = { days: [], hours: [], raw: [] }
  if (to <= from) return parts
  const firstHour = Math.ceil(from / MS_PER_HOUR)
  const endHour = Math.floor(to / MS_PER_HOUR)
  if (firstHour >= endHour) {
    parts.raw.push([from, to])
    return parts
  }
  if (from < firstHour * MS_PER_HOUR) parts.raw.push([from, firstHour * MS_PER_HOUR])
  if (endHour * MS_PER_HOUR < to) parts.raw.push([endHour * MS_PER_HOUR, to])
  const firstDay = Math.ceil(firstHour / hoursPerDay)
  const endDay = Math.floor(endHour / hoursPerDay)
  if (hoursPerDay === 1 || firstDay >= endDay) {
    if (hoursPerDay === 1) parts.days.push([firstHour, endHour])
    else parts.hours.push([firstHour, endHour])
    return parts
  }
  if (firstHour < firstDay * hoursPerDay) parts.hours.push([firstHour, firstDay * hoursPerDay])
  if (endDay * hoursPerDay < endHour) parts.hours.push([endDay * hoursPerDay, endHour])
  parts.days.push([firstDay, endDay])
  return parts
}

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

/** Which requests a query covers: endpoint ids and the nodes filter, as bound parameters. */
interface Scope {
  /** JSON array of endpoint ids */
  endpoints: string
  /** 1 when every node counts */
  allNodes: number
  /** JSON array of node ids (0 for requests without a node) */
  nodes: string
}

/** Where rollup and raw rows go: the summary they add to, or undefined to skip them. */
type Target = (
  endpointId: number,
  versionId: number,
  nodeId: number,
  userGroupId: number,
) => DurationSummary | undefined

const IN_ENDPOINTS = 'endpoint_id IN (SELECT value FROM json_each(@endpoints))'
const NODES = (column: string): string =>
  `(@allNodes OR ${column} IN (SELECT value FROM json_each(@nodes)))`

export class MetricsQueries {
  private readonly db: Database.Database
  private readonly statements = new Map<string, Database.Statement>()
  /** SQLite's word on damaged pages met while reading requests, if any */
  private damage: string | undefined

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

  /**
   * The requests of `scope` with from <= time < to, as raw rows of
   * `columns`: the parts of a range that no rollup holds whole (at most a
   * few hours, or two days for the per-client views). A schema-5 file has
   * no index on the requests' endpoint and time: the ids of an endpoint's
   * requests in an hour lie between rollup_hour's first_id and last_id, so
   * those spans, merged, are read as rowid ranges (with the other
   * endpoints' requests between them, left out by the WHERE). Older files
   * are read through their index (endpoint_id, time).
   */
  private rawRequests<Row extends unknown[]>(
    columns: string,
    scope: Scope,
    from: number,
    to: number,
  ): Iterable<Row> {
    const where = `${IN_ENDPOINTS} AND time >= @from AND time < @to
      AND ${NODES(`coalesce(node_id, ${NO_ID})`)}`
    const args = { ...scope, from, to }
    if (!this.connection.hasRequestSpans) {
      return this.sql(`SELECT ${columns} FROM request WHERE ${where}`)
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
        ...scope,
        fromHour: Math.floor(from / MS_PER_HOUR),
        endHour: Math.ceil(to / MS_PER_HOUR),
      }) as Array<[number, number]>
    const statement = this.sql(
      `SELECT ${columns} FROM request NOT INDEXED WHERE id BETWEEN @first AND @last AND ${where}`,
    ).raw()
    return (function* () {
      // Spans of several endpoints, versions and nodes overlap: each request is read once.
      for (const [first, last] of mergeSpans(spans)) {
        yield* statement.iterate({ ...args, first, last }) as IterableIterator<Row>
      }
    })()
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

  /** Whether a view covers every endpoint of the file (no selection, no one endpoint). */
  private everyEndpoint(args: StatusArgs): boolean {
    return args.endpointId === undefined && (args.endpointIds?.length ?? 0) === 0
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

  /** Node ids by name. */
  private nodeIds(): Map<string, number> {
    const rows = this.sql('SELECT id, name FROM node').all() as Array<{ id: number; name: string }>
    return new Map(rows.map((row) => [row.name, row.id]))
  }

  /** The ids (0 for UNKNOWN_NODE) of the node names given; unknown names have none. */
  private nodeIdsOf(names: string[]): number[] {
    const ids = this.nodeIds()
    return names.flatMap((name) =>
      name === UNKNOWN_NODE ? [NO_ID] : ids.has(name) ? [ids.get(name)!] : [],
    )
  }

  private scopeOf(endpoints: EndpointRow[], args: RangeArgs): Scope {
    const all = args.nodes === undefined || args.nodes.length === 0
    return {
      endpoints: JSON.stringify(endpoints.map((e) => e.id)),
      allNodes: all ? 1 : 0,
      nodes: JSON.stringify(all ? [] : this.nodeIdsOf(args.nodes!)),
    }
  }

  /** Names of the nodes, UNKNOWN_NODE last if some requests have none. */
  private nodeNames(): string[] {
    const names = [...this.nodeIds().keys()].sort()
    const unknown = this.sql(`SELECT 1 FROM rollup_day WHERE node_id = ${NO_ID} LIMIT 1`).get()
    return unknown === undefined ? names : [...names, UNKNOWN_NODE]
  }

  info(): FileInfo {
    this.connection.refreshRollups()
    const requests = this.sql('SELECT coalesce(sum(requests), 0) FROM rollup_day')
      .pluck()
      .get() as number
    const bounds = this.requestBounds()
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
      requestCount: requests,
      endpointCount: this.sql('SELECT count(*) FROM endpoint').pluck().get() as number,
      firstRequest: bounds.first,
      lastRequest: bounds.last,
      createdAt: Number.isFinite(createdAt) && meta.has('created_at') ? createdAt : null,
      demo: meta.get(DEMO_META_KEY) === '1',
      nodes: this.nodeNames(),
      damaged:
        this.damage === undefined
          ? null
          : `The metrics file ${this.connection.path} is damaged (${this.damage}): views of ` +
            'whole hours and days read its rollups and still work; views that read single ' +
            'requests in damaged parts fail.',
    }
  }

  /** The time of the file's first and last request (null: none). */
  private requestBounds(): { first: number | null; last: number | null } {
    if (!this.connection.hasRequestSpans) {
      // Per endpoint, the first and last request are one step in the index (endpoint_id, time).
      return this.sql(
        `SELECT min(first) AS first, max(last) AS last FROM (
           SELECT (SELECT min(time) FROM request WHERE endpoint_id = e.id) AS first,
                  (SELECT max(time) FROM request WHERE endpoint_id = e.id) AS last
           FROM endpoint e)`,
      ).get() as { first: number | null; last: number | null }
    }
    // The first and last hour from rollup_hour (a step in its key per endpoint), then the
    // requests of those hours.
    const hours = this.sql(
      `SELECT min(first) AS first, max(last) AS last FROM (
         SELECT (SELECT min(hour) FROM rollup_hour WHERE endpoint_id = e.id) AS first,
                (SELECT max(hour) FROM rollup_hour WHERE endpoint_id = e.id) AS last
         FROM endpoint e)`,
    ).get() as { first: number | null; last: number | null }
    if (hours.first === null || hours.last === null) return { first: null, last: null }
    const scope: Scope = {
      endpoints: JSON.stringify(this.endpointRows().map((e) => e.id)),
      allNodes: 1,
      nodes: '[]',
    }
    // Reduced as they come: an hour of a busy service is millions of requests.
    const bound = (hour: number, pick: (a: number, b: number) => number): number | null => {
      let found: number | null = null
      const rows = this.rawRequests<[number]>(
        'time',
        scope,
        hour * MS_PER_HOUR,
        (hour + 1) * MS_PER_HOUR,
      )
      try {
        for (const [time] of rows) found = found === null ? time : pick(found, time)
      } catch (error) {
        if (!isCorruption(error)) throw error
        // Damaged request pages: the hour the rollups know is still right, the minute is not.
        this.damage = (error as Error).message
        return pick === Math.min ? hour * MS_PER_HOUR : (hour + 1) * MS_PER_HOUR - 1
      }
      return found
    }
    return { first: bound(hours.first, Math.min), last: bound(hours.last, Math.max) }
  }

  /**
   * Adds the requests of [from, to) in scope to the summaries `target`
   * picks: whole days and hours from the rollups, the rest from requests.
   * Without `histograms`, only counts are read (faster).
   */
  private collect(scope: Scope, from: number, to: number, target: Target, histograms = true): void {
    const parts = rangeParts(from, to)
    const histogram = histograms ? ', histogram' : ''
    const rollups: Array<[string, Array<[number, number]>]> = [
      ['day', parts.days],
      ['hour', parts.hours],
    ]
    for (const [unit, ranges] of rollups) {
      const statement = this.sql(
        `SELECT endpoint_id, version_id, node_id, requests, errors_4xx, errors_5xx,
                sum_us, min_us, max_us${histogram}
         FROM rollup_${unit}
         WHERE ${IN_ENDPOINTS} AND ${unit} >= @from AND ${unit} < @to AND ${NODES('node_id')}`,
      ).raw()
      for (const [first, end] of ranges) {
        const rows = statement.iterate({ ...scope, from: first, to: end }) as IterableIterator<
          [number, number, number, number, number, number, number, number, number, Uint8Array?]
        >
        for (const [endpointId, versionId, nodeId, n, e4, e5, sum, min, max, blob] of rows) {
          target(endpointId, versionId, nodeId, NO_ID)?.addRollup(n, e4, e5, sum, min, max, blob)
        }
      }
    }
    for (const [first, end] of parts.raw) {
      const rows = this.rawRequests<[number, number, number, number, number]>(
        `endpoint_id, version_id, coalesce(node_id, ${NO_ID}), duration_us, status`,
        scope,
        first,
        end,
      )
      for (const [endpointId, versionId, nodeId, duration, status] of rows) {
        target(endpointId, versionId, nodeId, NO_ID)?.addRequest(duration, status)
      }
    }
  }

  /** One summary per key; `keyOf` returns undefined for rows to skip. */
  private summaries<K>(
    scope: Scope,
    from: number,
    to: number,
    keyOf: (endpointId: number, versionId: number, nodeId: number) => K | undefined,
    histograms = true,
  ): Map<K, DurationSummary> {
    const found = new Map<K, DurationSummary>()
    this.collect(
      scope,
      from,
      to,
      (endpointId, versionId, nodeId) => {
        const key = keyOf(endpointId, versionId, nodeId)
        if (key === undefined) return undefined
        let summary = found.get(key)
        if (summary === undefined) found.set(key, (summary = new DurationSummary(histograms)))
        return summary
      },
      histograms,
    )
    return found
  }

  /**
   * Requests of [from, to) per local bucket (day or hour: `unitMs`), and per
   * endpoint and status where asked, handed to `add` with the bucket's number
   * (local days or hours since the epoch). Whole hours come from
   * rollup_status (by status) or the index rollup_hour_requests, summed by
   * SQLite; the ends from the requests. Each request
   * counts in the bucket where its UTC hour starts.
   */
  private localCounts(
    scope: Scope,
    from: number,
    to: number,
    utcOffsetMinutes: number,
    unitMs: number,
    by: { endpoint: boolean; status: boolean },
    add: (bucket: number, endpointId: number, status: number, count: number) => void,
    /** whether the scope is every endpoint of the file */
    all = false,
  ): void {
    const offset = offsetMs(utcOffsetMinutes)
    const endpoint = by.endpoint ? 'endpoint_id' : '0'
    const status = by.status ? 'status' : '0'
    const parts = rangeParts(from, to, 1)
    // Over every endpoint, rollup_status has rows that count them all (endpoint_id 0).
    const table =
      all && !by.endpoint ? 'rollup_status' : by.status ? 'rollup_status' : 'rollup_hour'
    const rollupScope = all && !by.endpoint ? { ...scope, endpoints: `[${ALL_ENDPOINTS}]` } : scope
    const rollup = this.sql(
      `SELECT (hour * ${MS_PER_HOUR} + CAST(@offset AS INTEGER)) / CAST(@unit AS INTEGER) AS bucket, ${endpoint}, ${status},
              sum(requests)
       FROM ${table}
       WHERE ${IN_ENDPOINTS} AND hour >= @from AND hour < @to AND ${NODES('node_id')}
       GROUP BY 1, 2, 3`,
    ).raw()
    for (const [first, end] of parts.days) {
      const rows = rollup.iterate({
        ...rollupScope,
        from: first,
        to: end,
        offset,
        unit: unitMs,
      }) as IterableIterator<[number, number, number, number]>
      for (const [bucket, endpointId, code, n] of rows) add(bucket, endpointId, code, n)
    }
    for (const [first, end] of parts.raw) {
      const rows = this.rawRequests<[number, number, number]>(
        'time, endpoint_id, status',
        scope,
        first,
        end,
      )
      for (const [time, endpointId, code] of rows) {
        const bucket = Math.floor((Math.floor(time / MS_PER_HOUR) * MS_PER_HOUR + offset) / unitMs)
        add(bucket, by.endpoint ? endpointId : 0, by.status ? code : 0, 1)
      }
    }
  }

  private periodStats(summary: DurationSummary | undefined): PeriodStats {
    if (summary === undefined) {
      return { hits: 0, errors4xx: 0, errors5xx: 0, medianUs: null, p95Us: null }
    }
    return {
      hits: summary.count,
      errors4xx: summary.errors4xx,
      errors5xx: summary.errors5xx,
      ...summary.medianAndP95(),
    }
  }

  /** Every endpoint in scope, by route, with or without requests. */
  endpoints(args: RangeArgs): OverviewRow[] {
    this.connection.refreshRollups()
    const now = this.now()
    const endpoints = this.scope(args)
    const scope = this.scopeOf(endpoints, args)
    const perEndpoint = (from: number, to: number): Map<number, DurationSummary> =>
      this.summaries(scope, from, to, (endpointId) => endpointId)
    const today = perEndpoint(startOfLocalDay(now, args.utcOffsetMinutes), END_OF_TIME)
    const week = perEndpoint(now - 7 * MS_PER_DAY, END_OF_TIME)
    const range = perEndpoint(args.from, args.to)
    return endpoints.sort(byRoute).map((row) => ({
      ...toEndpoint(row),
      today: this.periodStats(today.get(row.id)),
      week: this.periodStats(week.get(row.id)),
      range: this.periodStats(range.get(row.id)),
    }))
  }

  /** Series of the endpoints with requests (and of selected ones without), busiest first. */
  utilization(args: RangeArgs): Utilization {
    this.connection.refreshRollups()
    const { firstDay, days } = daysOfRange(args.from, args.to, args.utcOffsetMinutes)
    const endpoints = this.scope(args)
    const counts = new Map(endpoints.map((e) => [e.id, zeros(days.length)]))
    this.localCounts(
      this.scopeOf(endpoints, args),
      args.from,
      args.to,
      args.utcOffsetMinutes,
      MS_PER_DAY,
      { endpoint: true, status: false },
      (localDay, endpointId, _, n) => {
        const day = localDay - firstDay
        // An hour that starts before the first local day (offsets of half hours) counts in it.
        counts.get(endpointId)![Math.max(0, Math.min(day, days.length - 1))]! += n
      },
    )
    const explicit = (args.endpointIds?.length ?? 0) > 0
    const series = endpoints
      .map((e) => {
        const perDay = counts.get(e.id)!
        return { endpointId: e.id, counts: perDay, total: perDay.reduce((a, b) => a + b, 0) }
      })
      // A selected endpoint is shown even without requests; otherwise only busy ones.
      .filter((s) => s.total > 0 || explicit)
    series.sort((a, b) => b.total - a.total || a.endpointId - b.endpointId)
    return { days, series: series.map(({ endpointId, counts }) => ({ endpointId, counts })) }
  }

  hourHeatmap(args: HeatmapArgs): HourHeatmap {
    this.connection.refreshRollups()
    const { firstDay, days } = daysOfRange(args.from, args.to, args.utcOffsetMinutes)
    const counts = Array.from({ length: 24 }, () => zeros(days.length))
    const scope = this.scopeOf(this.optionalEndpointScope(args), args)
    const by = { endpoint: false, status: false }
    this.localCounts(
      scope,
      args.from,
      args.to,
      args.utcOffsetMinutes,
      MS_PER_HOUR,
      by,
      (local, _e, _s, n) => {
        const day = Math.max(0, Math.min(Math.floor(local / 24) - firstDay, days.length - 1))
        counts[((local % 24) + 24) % 24]![day]! += n
      },
      this.everyEndpoint(args),
    )
    return { days, counts }
  }

  /** Box per endpoint with requests in range, slowest median first. */
  performance(args: RangeArgs): EndpointBox[] {
    this.connection.refreshRollups()
    const endpoints = this.scope(args)
    const found = this.summaries(
      this.scopeOf(endpoints, args),
      args.from,
      args.to,
      (endpointId) => endpointId,
    )
    const boxes: EndpointBox[] = []
    for (const [endpointId, summary] of found) {
      const stats = summary.box()
      if (stats !== null) boxes.push({ endpointId, stats })
    }
    return boxes.sort((a, b) => b.stats.median - a.stats.median || a.endpointId - b.endpointId)
  }

  versionEvolution(args: EndpointArgs): VersionEvolution {
    this.connection.refreshRollups()
    this.endpointRow(args.endpointId)
    const own = this.summaries(
      this.scopeOf([this.endpointRow(args.endpointId)], args),
      args.from,
      args.to,
      (_endpointId, versionId) => versionId,
    )
    // The versions with requests among the endpoints in scope, so that pages line up.
    const present = this.summaries(
      this.scopeOf(this.scope(args), args),
      args.from,
      args.to,
      (_endpointId, versionId) => versionId,
      false,
    )
    const versions = this.versionList([...present.keys(), ...own.keys()])
    return { versions, boxes: versions.map((v) => own.get(v.id)?.box() ?? null) }
  }

  /** Endpoints with requests in range, by id; versions by first seen. */
  versionUtilization(args: RangeArgs): VersionUtilization {
    this.connection.refreshRollups()
    const found = this.summaries(
      this.scopeOf(this.scope(args), args),
      args.from,
      args.to,
      (endpointId, versionId) => `${versionId},${endpointId}`,
      false,
    )
    const counts = new Map<number, Map<number, number>>()
    const endpointIds = new Set<number>()
    for (const [key, summary] of found) {
      const [versionId, endpointId] = key.split(',').map(Number) as [number, number]
      if (summary.count === 0) continue
      endpointIds.add(endpointId)
      let perEndpoint = counts.get(versionId)
      if (perEndpoint === undefined) counts.set(versionId, (perEndpoint = new Map()))
      perEndpoint.set(endpointId, summary.count)
    }
    const ids = [...endpointIds].sort((a, b) => a - b)
    const versions = this.versionList(counts.keys())
    return {
      versions,
      endpointIds: ids,
      counts: versions.map((v) => ids.map((id) => counts.get(v.id)?.get(id) ?? 0)),
    }
  }

  /**
   * Users or IPs of one endpoint. Chosen names must be among the 500 busiest
   * (`available`) to be shown; unknown ones are left out. Users (IPs) come
   * from rollup_user_day (rollup_ip_day) for whole UTC days and from the
   * requests at the range's ends; IPs of a schema 3 file from the requests.
   */
  clients(args: ClientArgs): ClientBreakdown {
    this.connection.refreshRollups()
    this.endpointRow(args.endpointId)
    const user = args.kind === 'user'
    const names = user
      ? 'SELECT id, name FROM user_group WHERE id = ?'
      : 'SELECT id, address AS name FROM client_ip WHERE id = ?'
    const byName = user
      ? 'SELECT id FROM user_group WHERE name = ?'
      : 'SELECT id FROM client_ip WHERE address = ?'
    const nameOf = (id: number | null): string =>
      id === null
        ? NO_CLIENT
        : ((this.sql(names).get(id) as { name: string } | undefined)?.name ?? `#${id}`)

    const scope = this.scopeOf([this.endpointRow(args.endpointId)], args)
    // Whole UTC days come from rollup_user_day (rollup_ip_day), the rest from requests;
    // every IP from requests in a schema 3 file, which has no rollup_ip_day.
    const firstDay = Math.ceil(args.from / MS_PER_DAY)
    const endDay = Math.floor(args.to / MS_PER_DAY)
    const rollupDays: Array<[number, number]> =
      (user || this.connection.hasIpRollups) && firstDay < endDay ? [[firstDay, endDay]] : []
    const rawParts: Array<[number, number]> = []
    if (rollupDays.length === 0) rawParts.push([args.from, args.to])
    else {
      if (args.from < firstDay * MS_PER_DAY) rawParts.push([args.from, firstDay * MS_PER_DAY])
      if (endDay * MS_PER_DAY < args.to) rawParts.push([endDay * MS_PER_DAY, args.to])
    }
    const column = user ? 'user_group_id' : 'client_ip_id'
    const rollupTable = user ? 'rollup_user_day' : 'rollup_ip_day'
    const rollupWhere = `${IN_ENDPOINTS} AND day >= @from AND day < @to AND ${NODES('node_id')}`

    // First the requests per client (0: none), summed by SQLite, to pick the ones to show.
    const totalOf = new Map<number, number>()
    const count = (rows: Array<[number, number]>): void => {
      for (const [client, n] of rows) totalOf.set(client, (totalOf.get(client) ?? 0) + n)
    }
    for (const [from, to] of rollupDays) {
      count(
        this.sql(
          `SELECT ${column}, sum(requests) FROM ${rollupTable} WHERE ${rollupWhere}
           GROUP BY ${column}`,
        )
          .raw()
          .all({ ...scope, from, to }) as Array<[number, number]>,
      )
    }
    // Requests are read once: (client, version, duration) kept for the second step.
    const rawClients: number[] = []
    const rawVersions: number[] = []
    const rawDurations: number[] = []
    const keep = (rows: Iterable<[number, number, number]>): void => {
      for (const [client, versionId, duration] of rows) {
        rawClients.push(client)
        rawVersions.push(versionId)
        rawDurations.push(duration)
        totalOf.set(client, (totalOf.get(client) ?? 0) + 1)
      }
    }
    for (const [from, to] of rawParts) {
      keep(
        this.rawRequests<[number, number, number]>(
          `coalesce(${column}, ${NO_ID}), version_id, duration_us`,
          scope,
          from,
          to,
        ),
      )
    }
    // The newest requests, which the writer has not counted per user and IP yet (at
    // most USER_ROLLUP_ROWS), found by id: NOT INDEXED keeps SQLite on the rowid range.
    for (const [from, to] of rollupDays) {
      const tail = this.sql(
        `SELECT coalesce(${column}, ${NO_ID}), version_id, duration_us
         FROM request NOT INDEXED
         WHERE id > @after AND ${IN_ENDPOINTS} AND time >= @from AND time < @to
           AND ${NODES(`coalesce(node_id, ${NO_ID})`)}`,
      ).raw()
      keep(
        tail.iterate({
          ...scope,
          after: this.connection.userRollupsThrough(),
          from: from * MS_PER_DAY,
          to: to * MS_PER_DAY,
        }) as IterableIterator<[number, number, number]>,
      )
    }
    const asClient = (id: number): number | null => (id === NO_ID ? null : id)
    const busiest = [...totalOf.entries()]
      .map(([id, n]) => ({ id: asClient(id), count: n }))
      .sort((a, b) => b.count - a.count || (a.id ?? -1) - (b.id ?? -1))
      .slice(0, MAX_AVAILABLE)
    const available = busiest.map((row) => ({ name: nameOf(row.id), count: row.count }))

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

    // Then the durations of the shown clients only, per version.
    const perClient = new Map<number | null, Map<number, DurationSummary>>(
      shown.map((id) => [id, new Map()]),
    )
    const summaryOf = (client: number | null, versionId: number): DurationSummary => {
      const perVersion = perClient.get(client)!
      let summary = perVersion.get(versionId)
      if (summary === undefined) perVersion.set(versionId, (summary = new DurationSummary()))
      return summary
    }
    const clients = JSON.stringify(shown.map((id) => id ?? NO_ID))
    for (const [from, to] of rollupDays) {
      const rows = this.sql(
        `SELECT ${column}, version_id, requests, sum_us, min_us, max_us, histogram
         FROM ${rollupTable}
         WHERE ${rollupWhere} AND ${column} IN (SELECT value FROM json_each(@clients))`,
      )
        .raw()
        .iterate({ ...scope, from, to, clients }) as IterableIterator<
        [number, number, number, number, number, number, Uint8Array]
      >
      for (const [client, versionId, n, sum, min, max, blob] of rows) {
        summaryOf(asClient(client), versionId).addRollup(n, 0, 0, sum, min, max, blob)
      }
    }
    const wantedIds = new Set(shown.map((id) => id ?? NO_ID))
    for (let i = 0; i < rawClients.length; i++) {
      const client = rawClients[i]!
      if (wantedIds.has(client))
        summaryOf(asClient(client), rawVersions[i]!).addRequest(rawDurations[i]!, 0)
    }

    const versions = this.versionList(shown.flatMap((id) => [...perClient.get(id)!.keys()]))
    return {
      available,
      clients: shown.flatMap((id) => {
        const all = new DurationSummary()
        for (const summary of perClient.get(id)!.values()) all.add(summary)
        const stats = all.box()
        return stats === null ? [] : [{ name: nameOf(id), stats }]
      }),
      versions,
      medianUs: shown.map((id) =>
        versions.map((v) => perClient.get(id)!.get(v.id)?.medianAndP95().medianUs ?? null),
      ),
    }
  }

  statusCodes(args: StatusArgs): StatusCodes {
    this.connection.refreshRollups()
    const { firstDay, days } = daysOfRange(args.from, args.to, args.utcOffsetMinutes)
    const series = new Map<number, { counts: number[]; total: number }>()
    const scope = this.scopeOf(this.optionalEndpointScope(args), args)
    const by = { endpoint: false, status: true }
    this.localCounts(
      scope,
      args.from,
      args.to,
      args.utcOffsetMinutes,
      MS_PER_DAY,
      by,
      (localDay, _e, status, n) => {
        let entry = series.get(status)
        if (entry === undefined)
          series.set(status, (entry = { counts: zeros(days.length), total: 0 }))
        entry.counts[Math.max(0, Math.min(localDay - firstDay, days.length - 1))]! += n
        entry.total += n
      },
      this.everyEndpoint(args),
    )
    return {
      days,
      series: [...series.entries()]
        .sort(([a, x], [b, y]) => y.total - x.total || a - b)
        .map(([status, { counts }]) => ({ status, counts })),
    }
  }

  /** Requests answered 4xx/5xx or left by their client, newest first. */
  latestErrors(args: StatusArgs & { limit?: number }): ErrorRequest[] {
    const limit = args.limit ?? DEFAULT_ERROR_LIMIT
    const endpoints = this.optionalEndpointScope(args)
    const scope = this.scopeOf(endpoints, args)
    const newest = this.sql(
      `SELECT r.id, r.endpoint_id AS endpointId, r.time, r.duration_us AS durationUs, r.status,
              v.name AS version, g.name AS user, ip.address AS ip, r.aborted
       FROM request r
       JOIN version v ON v.id = r.version_id
       LEFT JOIN user_group g ON g.id = r.user_group_id
       LEFT JOIN client_ip ip ON ip.id = r.client_ip_id
       WHERE r.endpoint_id = @endpoint AND r.time >= @from AND r.time < @to
         AND (r.status >= 400 OR r.aborted = 1) AND ${NODES(`coalesce(r.node_id, ${NO_ID})`)}
       ORDER BY r.time DESC, r.id DESC LIMIT @limit`,
    )
    type Row = Omit<ErrorRequest, 'aborted'> & { aborted: number }
    // The newest `limit` of each endpoint, merged: each query walks one endpoint's index backwards.
    const found: Row[] = []
    for (const endpoint of endpoints) {
      found.push(
        ...(newest.all({
          endpoint: endpoint.id,
          from: args.from,
          to: args.to,
          limit,
          allNodes: scope.allNodes,
          nodes: scope.nodes,
        }) as Row[]),
      )
    }
    return found
      .sort((a, b) => b.time - a.time || b.id - a.id)
      .slice(0, limit)
      .map((row) => ({ ...row, aborted: row.aborted === 1 }))
  }

  /** Hits, errors and durations per node, busiest first; every node in scope, even without requests. */
  nodeBreakdown(args: NodeArgs): NodeShare[] {
    this.connection.refreshRollups()
    const ids = this.nodeIds()
    const wanted =
      args.nodes === undefined || args.nodes.length === 0 ? this.nodeNames() : args.nodes
    const names = new Map<number, string>()
    for (const name of wanted) {
      if (name === UNKNOWN_NODE) names.set(NO_ID, name)
      else if (ids.has(name)) names.set(ids.get(name)!, name)
    }
    const found = this.summaries(
      this.scopeOf(this.optionalEndpointScope(args), args),
      args.from,
      args.to,
      (_endpointId, _versionId, nodeId) => nodeId,
    )
    return [...names.entries()]
      .map(([id, node]) => {
        const summary = found.get(id)
        return {
          node,
          hits: summary?.count ?? 0,
          errors4xx: summary?.errors4xx ?? 0,
          errors5xx: summary?.errors5xx ?? 0,
          stats: summary?.box() ?? null,
        }
      })
      .sort((a, b) => b.hits - a.hits || (a.node < b.node ? -1 : 1))
  }
}
