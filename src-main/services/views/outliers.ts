/*
 * The outlier views (level 2): the latest outliers of every endpoint or one,
 * one outlier with its context, and an endpoint's durations over time with
 * its outliers and their thresholds.
 */
import type {
  EndpointArgs,
  OutlierArgs,
  OutlierContext,
  OutlierDetail,
  OutlierPage,
  OutlierTimeline,
} from '../../api/contract.js'
import { badArgument } from '../../api/errors.js'
import {
  decodeProfile,
  toCpuProfile,
  type CpuProfile,
  type FoldedProfile,
} from 'routemeter/profiles'
import { DEFAULT_OUTLIER_LIMIT } from '../../api/validate.js'
import type { ViewContext } from './context.js'

/** Most requests an outlier timeline draws; more are thinned evenly. */
export const MAX_TIMELINE_POINTS = 2000
/** Most outliers a timeline marks (the newest). */
const MAX_TIMELINE_OUTLIERS = 1000

/** Outliers in scope and range, newest first, a page at a time. */
export function outliers(ctx: ViewContext, args: OutlierArgs): OutlierPage {
  const scope = ctx.scopeOf(ctx.optionalEndpointScope(args), args)
  let total = 0
  for (const [, count] of ctx.reader.outlierCounts(scope, args.from, args.to)) total += count
  const rows = ctx.reader.outliers(
    scope,
    args.from,
    args.to,
    args.offset ?? 0,
    args.limit ?? DEFAULT_OUTLIER_LIMIT,
  )
  return { total, outliers: rows }
}

/** One outlier with its context. */
export function outlier(ctx: ViewContext, args: { id: number }): OutlierDetail {
  const row = ctx.reader.outlier(args.id)
  if (row === undefined) throw badArgument(`there is no outlier with id ${args.id} in this file`)
  const { context, profile, ...summary } = row
  let decoded: FoldedProfile | null = null
  if (profile !== undefined && profile !== null) {
    try {
      decoded = decodeProfile(profile)
    } catch {
      // A profile that does not decode is shown as none; the outlier keeps the rest.
    }
  }
  return {
    ...summary,
    context: JSON.parse(context ?? '{}') as OutlierContext,
    profile: decoded,
  }
}

/** An outlier's own CPU profile (level 3) as a `.cpuprofile`; null when it has none. */
export function outlierCpuProfile(ctx: ViewContext, args: { id: number }): CpuProfile | null {
  const { profile } = outlier(ctx, args)
  return profile === null ? null : toCpuProfile(profile)
}

/** An endpoint's request durations in range (thinned), its outliers, and the thresholds they passed. */
export function outlierTimeline(ctx: ViewContext, args: EndpointArgs): OutlierTimeline {
  const endpoint = ctx.endpointRow(args.endpointId)
  const scope = ctx.scopeOf([endpoint], args)
  const all: Array<[number, number]> = []
  let requestCount = 0
  for (const row of ctx.reader.requests<[number, number, number]>(
    ['time', 'duration_us', 'weight'],
    scope,
    args.from,
    args.to,
  )) {
    all.push([row[0], row[1]])
    requestCount += row[2]
  }
  all.sort((a, b) => a[0] - b[0])
  const step = Math.max(1, all.length / MAX_TIMELINE_POINTS)
  const requests: Array<[number, number]> = []
  for (let i = 0; i < all.length && requests.length < MAX_TIMELINE_POINTS; i += step) {
    requests.push(all[Math.floor(i)]!)
  }
  const found = ctx.reader
    .outliers(scope, args.from, args.to, 0, MAX_TIMELINE_OUTLIERS)
    .sort((a, b) => a.time - b.time)
  return {
    requests,
    requestCount,
    // Rows stand for more requests than themselves: the dots are a sample.
    sampled: requestCount > all.length,
    rawSince: ctx.reader.rawSince(),
    outliers: found.map((o) => [o.time, o.durationUs, o.id]),
    threshold: found.map((o) => [o.time, o.thresholdUs]),
  }
}
