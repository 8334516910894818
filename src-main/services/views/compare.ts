/*
 * Compare: what a release changed, per endpoint (routemeter/compare does the
 * statistics). By default the latest release against the one before it:
 * versions with git tags when at least two have one, else the last two
 * versions to appear.
 */
import type { CompareArgs, ReleaseComparison } from '../../api/contract.js'
import { releases } from 'routemeter/compare'
import type { ViewContext } from './context.js'

export function compare(ctx: ViewContext, args: CompareArgs): ReleaseComparison {
  const { reader } = ctx
  reader.refreshRollups()
  const versions = ctx.versionList(reader.versions().map((v) => v.id))
  const pool = releases(versions)
  const candidateIds = args.candidate.length > 0 ? args.candidate : pool.slice(-1).map((v) => v.id)
  const baselineIds =
    args.baseline.length > 0
      ? args.baseline
      : pool
          .filter((v) => !candidateIds.includes(v.id))
          .slice(-1)
          .map((v) => v.id)
  const names = (ids: readonly number[]) =>
    versions.filter((v) => ids.includes(v.id)).map((v) => v.name)
  const empty = { versions, baselineIds, candidateIds, endpointIds: [] }
  const byTime = args.baselineRange !== undefined && args.candidateRange !== undefined
  if (!byTime && (names(baselineIds).length === 0 || names(candidateIds).length === 0)) {
    return {
      ...empty,
      baseline: { versionNames: names(baselineIds) },
      candidate: { versionNames: names(candidateIds) },
      test: args.test ?? 'mood',
      method: '',
      endpoints: [],
    }
  }
  const side = (range: [number, number] | undefined, ids: readonly number[]) =>
    range === undefined ? { versions: names(ids) } : { from: range[0], to: range[1] }
  const comparison = reader.compareReleases({
    baseline: side(args.baselineRange, baselineIds),
    candidate: side(args.candidateRange, candidateIds),
    ...(args.test === undefined ? {} : { test: args.test }),
  })
  const ids = new Map(reader.endpoints().map((e) => [`${e.method} ${e.route}`, e.id]))
  return {
    ...comparison,
    ...empty,
    endpointIds: comparison.endpoints.map((e) => ids.get(`${e.method} ${e.route}`) ?? 0),
  }
}
