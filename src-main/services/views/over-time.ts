/*
 * The views over time, by local day or hour: utilization, the hour-of-day
 * heatmap, status codes; and the latest errors, which only the requests hold.
 */
import type {
  ErrorRequest,
  HeatmapArgs,
  HourHeatmap,
  RangeArgs,
  StatusArgs,
  StatusCodes,
  Utilization,
} from '../../api/contract.js'
import { DEFAULT_ERROR_LIMIT } from '../../api/validate.js'
import { daysOfRange, MS_PER_DAY, MS_PER_HOUR } from '../stats.js'
import { zeros, type ViewContext } from './context.js'
import { localCounts } from './range.js'

/** Series of the endpoints with requests (and of selected ones without), busiest first. */
export function utilization(ctx: ViewContext, args: RangeArgs): Utilization {
  ctx.reader.refreshRollups()
  const { firstDay, days } = daysOfRange(args.from, args.to, args.utcOffsetMinutes)
  const endpoints = ctx.scope(args)
  const counts = new Map(endpoints.map((e) => [e.id, zeros(days.length)]))
  localCounts(
    ctx.reader,
    ctx.scopeOf(endpoints, args),
    args,
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

export function hourHeatmap(ctx: ViewContext, args: HeatmapArgs): HourHeatmap {
  ctx.reader.refreshRollups()
  const { firstDay, days } = daysOfRange(args.from, args.to, args.utcOffsetMinutes)
  const counts = Array.from({ length: 24 }, () => zeros(days.length))
  localCounts(
    ctx.reader,
    ctx.scopeOf(ctx.optionalEndpointScope(args), args),
    args,
    MS_PER_HOUR,
    { endpoint: false, status: false },
    (local, _e, _s, n) => {
      const day = Math.max(0, Math.min(Math.floor(local / 24) - firstDay, days.length - 1))
      counts[((local % 24) + 24) % 24]![day]! += n
    },
    ctx.everyEndpoint(args),
  )
  return { days, counts }
}

export function statusCodes(ctx: ViewContext, args: StatusArgs): StatusCodes {
  ctx.reader.refreshRollups()
  const { firstDay, days } = daysOfRange(args.from, args.to, args.utcOffsetMinutes)
  const series = new Map<number, { counts: number[]; total: number }>()
  localCounts(
    ctx.reader,
    ctx.scopeOf(ctx.optionalEndpointScope(args), args),
    args,
    MS_PER_DAY,
    { endpoint: false, status: true },
    (localDay, _e, status, n) => {
      let entry = series.get(status)
      if (entry === undefined)
        series.set(status, (entry = { counts: zeros(days.length), total: 0 }))
      entry.counts[Math.max(0, Math.min(localDay - firstDay, days.length - 1))]! += n
      entry.total += n
    },
    ctx.everyEndpoint(args),
  )
  return {
    days,
    series: [...series.entries()]
      .sort(([a, x], [b, y]) => y.total - x.total || a - b)
      .map(([status, { counts }]) => ({ status, counts })),
  }
}

/** Requests answered 4xx/5xx or left by their client, newest first. */
export function latestErrors(
  ctx: ViewContext,
  args: StatusArgs & { limit?: number },
): ErrorRequest[] {
  const limit = args.limit ?? DEFAULT_ERROR_LIMIT
  const endpoints = ctx.optionalEndpointScope(args)
  const { nodeIds } = ctx.scopeOf(endpoints, args)
  // The newest `limit` of each endpoint, merged.
  const found = endpoints.flatMap((endpoint) =>
    ctx.reader.latestErrors(endpoint.id, nodeIds, args.from, args.to, limit),
  )
  return found
    .sort((a, b) => b.time - a.time || b.id - a.id)
    .slice(0, limit)
    .map((row) => ({ ...row, aborted: row.aborted === 1 }))
}
