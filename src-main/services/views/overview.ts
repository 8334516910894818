/*
 * The file at a glance and the views over endpoints: info, the overview
 * table, box plots per endpoint, and the split per node.
 */
import type { EndpointRow } from 'routemeter/schema'
import { NO_ID } from 'routemeter/schema'
import type {
  EndpointBox,
  FileInfo,
  NodeArgs,
  NodeShare,
  OverviewRow,
  PeriodStats,
  RangeArgs,
} from '../../api/contract.js'
import { UNKNOWN_NODE } from '../../api/contract.js'
import { isCorruption } from '../../api/errors.js'
import { DEMO_META_KEY, toEndpoint } from '../database.js'
import { DurationSummary, MS_PER_DAY, MS_PER_HOUR, startOfLocalDay } from '../stats.js'
import type { ViewContext } from './context.js'
import { summaries } from './range.js'

/** Larger than any time: "since midnight" and "the last 7 days" include later clock skew. */
const END_OF_TIME = Number.MAX_SAFE_INTEGER

/** Orders endpoints by route then method, the request-less catch-all last. */
function byRoute(a: EndpointRow, b: EndpointRow): number {
  const unmatched = Number(a.route.startsWith('(')) - Number(b.route.startsWith('('))
  if (unmatched !== 0) return unmatched
  return a.route < b.route ? -1 : a.route > b.route ? 1 : a.method < b.method ? -1 : 1
}

function periodStats(summary: DurationSummary | undefined): PeriodStats {
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

export function info(ctx: ViewContext): FileInfo {
  const { reader } = ctx
  reader.refreshRollups()
  const bounds = requestBounds(ctx)
  const meta = reader.meta()
  const createdAt = Number(meta.get('created_at'))
  return {
    path: reader.path,
    sizeBytes: reader.size(),
    schemaVersion: reader.schemaVersion,
    requestCount: reader.requestCount(),
    endpointCount: reader.endpoints().length,
    firstRequest: bounds.first,
    lastRequest: bounds.last,
    createdAt: Number.isFinite(createdAt) && meta.has('created_at') ? createdAt : null,
    demo: meta.get(DEMO_META_KEY) === '1',
    nodes: ctx.nodeNames(),
    rawSince: reader.rawSince(),
    damaged:
      ctx.damage === undefined
        ? null
        : `The metrics file ${reader.path} is damaged (${ctx.damage}): views of ` +
          'whole hours and days read its rollups and still work; views that read single ' +
          'requests in damaged parts fail.',
  }
}

/** The time of the first and last request (null: none): their hours, then those hours' requests. */
function requestBounds(ctx: ViewContext): { first: number | null; last: number | null } {
  const endpointIds = ctx.reader.endpoints().map((e) => e.id)
  const hours = ctx.reader.hourBounds(endpointIds)
  if (hours.first === null || hours.last === null) return { first: null, last: null }
  const scope = { endpointIds, nodeIds: undefined }
  // Reduced as they come: an hour of a busy service is millions of requests.
  const bound = (hour: number, pick: (a: number, b: number) => number): number | null => {
    let found: number | null = null
    const rows = ctx.reader.requests<[number]>(
      ['time'],
      scope,
      hour * MS_PER_HOUR,
      (hour + 1) * MS_PER_HOUR,
    )
    try {
      for (const [time] of rows) found = found === null ? time : pick(found, time)
    } catch (error) {
      if (!isCorruption(error)) throw error
      // Damaged request pages: the hour the rollups know is still right, the minute is not.
      ctx.damage = (error as Error).message
      return pick === Math.min ? hour * MS_PER_HOUR : (hour + 1) * MS_PER_HOUR - 1
    }
    // The hour's raw rows were pruned (retention): the rollups know the hour, not the minute.
    if (found === null) return pick === Math.min ? hour * MS_PER_HOUR : (hour + 1) * MS_PER_HOUR - 1
    return found
  }
  return { first: bound(hours.first, Math.min), last: bound(hours.last, Math.max) }
}

/** Every endpoint in scope, by route, with or without requests. */
export function endpoints(ctx: ViewContext, args: RangeArgs): OverviewRow[] {
  const { reader } = ctx
  reader.refreshRollups()
  const now = ctx.now()
  const rows = ctx.scope(args)
  const scope = ctx.scopeOf(rows, args)
  const perEndpoint = (from: number, to: number): Map<number, DurationSummary> =>
    summaries(reader, scope, from, to, (endpointId) => endpointId)
  const today = perEndpoint(startOfLocalDay(now, args.utcOffsetMinutes), END_OF_TIME)
  const week = perEndpoint(now - 7 * MS_PER_DAY, END_OF_TIME)
  const range = perEndpoint(args.from, args.to)
  const outliers = new Map(reader.outlierCounts(scope, args.from, args.to))
  return rows.sort(byRoute).map((row) => ({
    ...toEndpoint(row),
    today: periodStats(today.get(row.id)),
    week: periodStats(week.get(row.id)),
    range: periodStats(range.get(row.id)),
    outliers: outliers.get(row.id) ?? 0,
  }))
}

/** Box per endpoint with requests in range, slowest median first. */
export function performance(ctx: ViewContext, args: RangeArgs): EndpointBox[] {
  ctx.reader.refreshRollups()
  const found = summaries(
    ctx.reader,
    ctx.scopeOf(ctx.scope(args), args),
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

/** Hits, errors and durations per node, busiest first; every node in scope, even without requests. */
export function nodeBreakdown(ctx: ViewContext, args: NodeArgs): NodeShare[] {
  ctx.reader.refreshRollups()
  const ids = ctx.nodeIds()
  const wanted = args.nodes === undefined || args.nodes.length === 0 ? ctx.nodeNames() : args.nodes
  const names = new Map<number, string>()
  for (const name of wanted) {
    if (name === UNKNOWN_NODE) names.set(NO_ID, name)
    else if (ids.has(name)) names.set(ids.get(name)!, name)
  }
  const found = summaries(
    ctx.reader,
    ctx.scopeOf(ctx.optionalEndpointScope(args), args),
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
