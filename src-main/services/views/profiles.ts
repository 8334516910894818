/*
 * Level 3's views: an endpoint's CPU profile over a range, all versions or
 * some, merged from its hourly rows (routemeter/profiles), and the same as a
 * `.cpuprofile` to save.
 */
import { decodeProfile, FoldedBuilder, toCpuProfile, type CpuProfile } from 'routemeter/profiles'
import type { EndpointProfile, ProfileArgs } from '../../api/contract.js'
import type { ViewContext } from './context.js'

const HOUR_MS = 3_600_000

export function profile(ctx: ViewContext, args: ProfileArgs): EndpointProfile {
  const endpoint = ctx.endpointRow(args.endpointId)
  const scope = ctx.scopeOf([endpoint], args)
  const rows = ctx.reader.profiles(
    endpoint.id,
    scope.nodeIds,
    Math.floor(args.from / HOUR_MS),
    Math.ceil(args.to / HOUR_MS),
  )
  const wanted = args.versionIds === undefined ? undefined : new Set(args.versionIds)
  const perVersion = new Map<number, number>()
  let builder: FoldedBuilder | undefined
  let damaged = 0
  for (const [versionId, samples, intervalUs, tree] of rows) {
    perVersion.set(versionId, (perVersion.get(versionId) ?? 0) + samples)
    if (wanted !== undefined && !wanted.has(versionId)) continue
    try {
      const decoded = decodeProfile(tree)
      ;(builder ??= new FoldedBuilder(intervalUs)).merge(decoded)
    } catch {
      damaged++
    }
  }
  const merged = builder === undefined || builder.empty ? null : builder.build()
  return {
    versions: ctx.versionList(perVersion.keys()).map((version) => ({
      ...version,
      samples: perVersion.get(version.id) ?? 0,
    })),
    profile: merged,
    damagedRows: damaged,
  }
}

/** The profile as a Chrome DevTools `.cpuprofile`; null when there is none. */
export function cpuProfile(ctx: ViewContext, args: ProfileArgs): CpuProfile | null {
  const { profile: merged } = profile(ctx, args)
  return merged === null ? null : toCpuProfile(merged)
}
