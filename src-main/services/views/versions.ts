/*
 * The views over versions: an endpoint's box plot per version, and requests
 * per version and endpoint.
 */
import type {
  EndpointArgs,
  RangeArgs,
  VersionEvolution,
  VersionUtilization,
} from '../../api/contract.js'
import type { ViewContext } from './context.js'
import { summaries } from './range.js'

export function versionEvolution(ctx: ViewContext, args: EndpointArgs): VersionEvolution {
  ctx.reader.refreshRollups()
  const own = summaries(
    ctx.reader,
    ctx.scopeOf([ctx.endpointRow(args.endpointId)], args),
    args.from,
    args.to,
    (_endpointId, versionId) => versionId,
  )
  // The versions with requests among the endpoints in scope, so that pages line up.
  const present = summaries(
    ctx.reader,
    ctx.scopeOf(ctx.scope(args), args),
    args.from,
    args.to,
    (_endpointId, versionId) => versionId,
    false,
  )
  const versions = ctx.versionList([...present.keys(), ...own.keys()])
  return { versions, boxes: versions.map((v) => own.get(v.id)?.box() ?? null) }
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
