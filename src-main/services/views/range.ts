/*
 * The range helper every view uses. A range [from, to) is cut into whole UTC
 * days (daily rollups), whole UTC hours at its ends (hourly rollups) and the
 * minutes before the first and after the last whole hour, read from the
 * requests themselves. So no range is snapped (but
 * an end before the raw rows kept, pruned by retention, is read as its whole hour): counts are exact for any
 * range, and quantiles come from the rollups' duration histograms, within
 * QUANTILE_RELATIVE_ERROR of the exact value (stats.ts, DurationSummary).
 *
 * The views by local day or hour count whole UTC hours: each request counts
 * in the local hour, and day, in which its UTC hour starts. With a UTC offset
 * of whole hours that is exact; with one that is not (+5:30, +5:45, -9:30)
 * requests move up to 45 minutes earlier.
 */
import { NO_ID } from 'routemeter/schema'
import { DurationSummary, MS_PER_HOUR, offsetMs } from '../stats.js'
import type { MetricsReader, Scope } from './reader.js'

/**
 * [from, to) cut into whole UTC days, whole UTC hours and the rest: each
 * part read from the coarsest source that holds it exactly.
 */
export interface RangeParts {
  /** [first, end) day numbers for the daily rollups */
  days: Array<[number, number]>
  /** [first, end) hour numbers for the hourly rollups */
  hours: Array<[number, number]>
  /** [from, to) ms for the requests */
  raw: Array<[number, number]>
}

export function rangeParts(
  from: number,
  to: number,
  hoursPerDay = 24,
  /** raw rows before this were pruned: an end of the range there is read as its whole hour */
  rawSince = 0,
  /**
   * the newest request's start: a range that ends after it ends with a whole hour, which
   * holds nothing later (the rollups answer instead of the requests of a busy hour)
   */
  newest = Number.POSITIVE_INFINITY,
): RangeParts {
  const parts: RangeParts = { days: [], hours: [], raw: [] }
  if (to <= from) return parts
  if (from < rawSince) from = Math.floor(from / MS_PER_HOUR) * MS_PER_HOUR
  if (Math.floor(to / MS_PER_HOUR) * MS_PER_HOUR < rawSince || to > newest) {
    to = Math.ceil(to / MS_PER_HOUR) * MS_PER_HOUR
  }
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

/** Where rollup and raw rows go: the summary they add to, or undefined to skip them. */
export type Target = (
  endpointId: number,
  versionId: number,
  nodeId: number,
  userGroupId: number,
) => DurationSummary | undefined

/** Adds the requests of [from, to) in scope to the summaries `target` picks. */
export function collect(
  reader: MetricsReader,
  scope: Scope,
  from: number,
  to: number,
  target: Target,
  histograms = true,
): void {
  const parts = rangeParts(from, to, 24, reader.rawSince(), reader.newestRequest(scope.endpointIds))
  for (const [unit, ranges] of [
    ['day', parts.days],
    ['hour', parts.hours],
  ] as const) {
    for (const [first, end] of ranges) {
      for (const [endpointId, versionId, nodeId, n, e4, e5, sum, min, max, blob] of reader.rollups(
        unit,
        scope,
        first,
        end,
        histograms,
      )) {
        target(endpointId, versionId, nodeId, NO_ID)?.addRollup(n, e4, e5, sum, min, max, blob)
      }
    }
  }
  for (const [first, end] of parts.raw) {
    const rows = reader.requests<[number, number, number, number, number, number]>(
      ['endpoint_id', 'version_id', 'node_id', 'duration_us', 'status', 'weight'],
      scope,
      first,
      end,
    )
    for (const [endpointId, versionId, nodeId, duration, status, weight] of rows) {
      target(endpointId, versionId, nodeId, NO_ID)?.addRequest(duration, status, weight)
    }
  }
}

/** One summary per key over [from, to); `keyOf` returns undefined for rows to skip. */
export function summaries<K>(
  reader: MetricsReader,
  scope: Scope,
  from: number,
  to: number,
  keyOf: (endpointId: number, versionId: number, nodeId: number) => K | undefined,
  histograms = true,
): Map<K, DurationSummary> {
  const found = new Map<K, DurationSummary>()
  collect(
    reader,
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
 * (local days or hours since the epoch). Whole hours from the rollups, the
 * ends from the requests; each request counts in the bucket where its UTC
 * hour starts.
 */
export function localCounts(
  reader: MetricsReader,
  scope: Scope,
  range: { from: number; to: number; utcOffsetMinutes: number },
  unitMs: number,
  by: { endpoint: boolean; status: boolean },
  add: (bucket: number, endpointId: number, status: number, count: number) => void,
  /** whether the scope is every endpoint of the store */
  allEndpoints = false,
): void {
  const offset = offsetMs(range.utcOffsetMinutes)
  const parts = rangeParts(
    range.from,
    range.to,
    1,
    reader.rawSince(),
    reader.newestRequest(scope.endpointIds),
  )
  for (const [first, end] of parts.days) {
    const rows = reader.hourlyCounts(
      scope,
      first,
      end,
      { offsetMs: offset, unitMs },
      by,
      allEndpoints,
    )
    for (const [bucket, endpointId, code, n] of rows) add(bucket, endpointId, code, n)
  }
  for (const [first, end] of parts.raw) {
    const rows = reader.requests<[number, number, number, number]>(
      ['time', 'endpoint_id', 'status', 'weight'],
      scope,
      first,
      end,
    )
    for (const [time, endpointId, code, weight] of rows) {
      const bucket = Math.floor((Math.floor(time / MS_PER_HOUR) * MS_PER_HOUR + offset) / unitMs)
      add(bucket, by.endpoint ? endpointId : 0, by.status ? code : 0, weight)
    }
  }
}
