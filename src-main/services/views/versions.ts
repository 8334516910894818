/*
 * The views over versions: an endpoint's box plot per version (or per
 * release, or without the short-lived versions), each marked with its
 * verdict against the one before, and requests per version and endpoint.
 */
import type {
  RangeArgs,
  Version,
  VersionEvolution,
  VersionEvolutionArgs,
  VersionUtilization,
} from '../../api/contract.js'
import type { ViewContext } from './context.js'
import { summaries } from './range.js'

/** A version that was replaced within this time of appearing (and has no tag) is short-lived. */
const SHORT_LIVED_MS = 3_600_000
/** ... as is one with fewer requests of the endpoint than this in range. */
const SHORT_LIVED_REQUESTS = 30

/** One box of the timeline: a version, or a release with the commits that led to it. */
interface TimelineItem {
  /** the version that names the item: the tagged one of a release */
  lead: Version
  members: Version[]
}

/**
 * Versions folded into releases: the untagged versions before a tagged one
 * lead to it and join it; those after the last tag are one item, named by
 * the newest. Without any tag, every version stays its own item.
 */
function byRelease(versions: Version[]): TimelineItem[] {
  const items: TimelineItem[] = []
  let pending: Version[] = []
  for (const version of versions) {
    pending.push(version)
    if (version.tags.length > 0) {
      items.push({ lead: version, members: pending })
      pending = []
    }
  }
  if (pending.length > 0) items.push({ lead: pending[pending.length - 1]!, members: pending })
  return items
}

export function versionEvolution(ctx: ViewContext, args: VersionEvolutionArgs): VersionEvolution {
  const { reader } = ctx
  reader.refreshRollups()
  const timeline = args.timeline ?? 'versions'
  const all = ctx.versionList(reader.versions().map((v) => v.id))
  const items =
    timeline === 'releases' ? byRelease(all) : all.map((v) => ({ lead: v, members: [v] }))
  const itemOf = new Map(items.flatMap((item, i) => item.members.map((v) => [v.id, i])))
  const endpoint = ctx.endpointRow(args.endpointId)
  const own = summaries(reader, ctx.scopeOf([endpoint], args), args.from, args.to, (_e, v) =>
    itemOf.get(v),
  )
  // The items with requests among the endpoints in scope, so that pages line up.
  const present = summaries(
    reader,
    ctx.scopeOf(ctx.scope(args), args),
    args.from,
    args.to,
    (_e, v) => itemOf.get(v),
    false,
  )
  const shortLived = (i: number): boolean => {
    const { lead } = items[i]!
    if (lead.tags.length > 0 || i === items.length - 1) return false
    return (
      items[i + 1]!.lead.firstSeen - lead.firstSeen < SHORT_LIVED_MS ||
      (own.get(i)?.count ?? 0) < SHORT_LIVED_REQUESTS
    )
  }
  const shown = items
    .map((_, i) => i)
    .filter((i) => present.has(i) || own.has(i))
    .filter((i) => timeline !== 'lasting' || !shortLived(i))
  // Each box against the one before it, on the same range (every node), from the rollups.
  const name = `${endpoint.method} ${endpoint.route}`
  const side = (i: number) => ({
    versions: items[i]!.members.map((v) => v.name),
    from: args.from,
    to: args.to,
  })
  const changes = shown.map((i, k) => {
    if (k === 0 || !own.has(i) || !own.has(shown[k - 1]!)) return null
    const [row] = reader.compareReleases({
      baseline: side(shown[k - 1]!),
      candidate: side(i),
      endpoints: [name],
      // From the histograms: a timeline of many versions would read their rows many times.
      exactRows: 0,
    }).endpoints
    return row === undefined
      ? null
      : { verdict: row.verdict, medianChangePercent: row.medianChangePercent }
  })
  return {
    versions: shown.map((i) => items[i]!.lead),
    boxes: shown.map((i) => own.get(i)?.box() ?? null),
    folded: shown.map((i) => items[i]!.members.length - 1),
    changes,
    hidden: items.filter((_, i) => (present.has(i) || own.has(i)) && !shown.includes(i)).length,
  }
}

/** Endpoints with requests in range, by id; versions by first seen. */
export function versionUtilization(ctx: ViewContext, args: RangeArgs): VersionUtilization {
  ctx.reader.refreshRollups()
  const found = summaries(
    ctx.reader,
    ctx.scopeOf(ctx.scope(args), args),
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
  const versions = ctx.versionList(counts.keys())
  return {
    versions,
    endpointIds: ids,
    counts: versions.map((v) => ids.map((id) => counts.get(v.id)?.get(id) ?? 0)),
  }
}
