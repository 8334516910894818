/*
 * What did a release change? Per endpoint, a baseline and a candidate (each
 * some versions, or a time range), read from the rollups' histograms: the
 * requests, median and p95 of each side, the error rates, and a verdict from
 * Mood's median test on the 2 x 2 table of requests above and below the
 * pooled median, with Holm's correction over the endpoints compared. From
 * histograms, the table's counts of the bucket that holds the pooled median
 * are split in proportion (the durations within a bucket differ by at most
 * 4.43%); an effect smaller than a bucket is never a verdict anyway, as the
 * minimum effect is larger.
 */
import type Database from 'better-sqlite3'
import { addEncodedHistogram, bucketBounds, BUCKET_COUNT } from '../schema/rollup.js'
import { holm, medianTableTest } from './statistics.js'
import type { CompareOptions, Comparison, EndpointComparison, Side, SideFigures } from './types.js'

export type {
  CompareOptions,
  Comparison,
  EndpointComparison,
  Side,
  SideFigures,
  Verdict,
} from './types.js'

/** A version of the file, in the order versions appeared, with its git tags. */
export interface ReleaseVersion {
  id: number
  name: string
  tags: string[]
}

/** A version's tags as stored (version.tags, a JSON array of strings); anything else reads as none. */
export function parseTags(json: string | null | undefined): string[] {
  if (json === null || json === undefined) return []
  try {
    const value = JSON.parse(json) as unknown
    return Array.isArray(value) ? value.filter((tag): tag is string => typeof tag === 'string') : []
  } catch {
    return []
  }
}

/** The file's versions in the order they appeared (files before schema 8 have no tags). */
export function readVersions(db: Database.Database): ReleaseVersion[] {
  const hasTags = (db.prepare('PRAGMA table_info(version)').all() as Array<{ name: string }>).some(
    (c) => c.name === 'tags',
  )
  const rows = db
    .prepare(
      `SELECT id, name, ${hasTags ? 'tags' : 'NULL AS tags'} AS tags FROM version ORDER BY first_seen, id`,
    )
    .all() as Array<{ id: number; name: string; tags: string | null }>
  return rows.map((row) => ({ ...row, tags: parseTags(row.tags) }))
}

/**
 * The versions that count as releases, in order: those with a git tag when
 * at least two have one, else every version. A comparison's default is the
 * last of them against the one before.
 */
export function releases<V extends { tags: readonly string[] }>(versions: readonly V[]): V[] {
  const tagged = versions.filter((v) => v.tags.length > 0)
  return tagged.length >= 2 ? tagged : [...versions]
}

/**
 * The durations bucket `b` holds, [low, top): its bounds, the last one
 * (everything from 2^44 µs up) closed at the width of the others.
 */
function bucketSpan(b: number): { low: number; top: number } {
  const { low, high } = bucketBounds(b)
  return { low, top: Math.min(high, low * 1.05 + 1) }
}

/** Histograms and counts of one endpoint on one side. */
class Distribution {
  readonly histogram = new Float64Array(BUCKET_COUNT)
  requests = 0
  errors5xx = 0

  add(requests: number, errors5xx: number, histogram: Uint8Array): void {
    this.requests += requests
    this.errors5xx += errors5xx
    addEncodedHistogram(this.histogram, histogram)
  }

  /** The estimated q-quantile in µs (values spread evenly within a bucket). */
  quantile(q: number): number | null {
    if (this.requests === 0) return null
    const rank = q * this.requests
    let below = 0
    for (let b = 0; b < BUCKET_COUNT; b++) {
      const n = this.histogram[b]!
      if (n === 0) continue
      if (below + n >= rank) {
        const { low, top } = bucketSpan(b)
        return low + ((rank - below) / n) * (top - low)
      }
      below += n
    }
    return null
  }

  /** Requests above `value` µs, the bucket holding it split in proportion. */
  above(value: number): number {
    let count = 0
    for (let b = 0; b < BUCKET_COUNT; b++) {
      const n = this.histogram[b]!
      if (n === 0) continue
      const { low, top } = bucketSpan(b)
      if (low > value) count += n
      else if (top > value) count += (n * (top - value)) / (top - low)
    }
    return count
  }
}

/** The versions a side names (by name or by tag), or every version when it names none. */
function versionsOf(all: ReleaseVersion[], side: Side): ReleaseVersion[] {
  if (side.versions === undefined || side.versions.length === 0) return all
  const wanted = new Set(side.versions)
  return all.filter((v) => wanted.has(v.name) || v.tags.some((tag) => wanted.has(tag)))
}

/**
 * Compares two sides per endpoint, from the rollups (rollup_day for whole
 * days, rollup_hour for ranges that are not whole days). Throws a TypeError
 * when a side names a version the file does not have.
 */
export function compareReleases(db: Database.Database, options: CompareOptions): Comparison {
  const minRequests = options.minRequests ?? 30
  const minChangePercent = options.minChangePercent ?? 5
  const minChangeMs = options.minChangeMs ?? 1
  const alpha = options.alpha ?? 0.05
  const versions = readVersions(db)
  const sides = [options.baseline, options.candidate].map((side, i) => {
    const chosen = versionsOf(versions, side)
    if (side.versions !== undefined && side.versions.length > 0 && chosen.length === 0) {
      throw new TypeError(
        `routemeter: the ${i === 0 ? 'baseline' : 'candidate'} names no version in this file: ${side.versions.join(', ')}`,
      )
    }
    return { side, versions: chosen }
  })
  const endpoints = db.prepare('SELECT id, method, route FROM endpoint').all() as Array<{
    id: number
    method: string
    route: string
  }>
  const wanted = options.endpoints === undefined ? undefined : new Set(options.endpoints)
  const read = (endpointId: number, side: (typeof sides)[number]): Distribution => {
    const distribution = new Distribution()
    const ids = JSON.stringify(side.versions.map((v) => v.id))
    const { from, to } = side.side
    // Whole hours in range from rollup_hour; without a range every day from rollup_day.
    const rows =
      from === undefined && to === undefined
        ? db
            .prepare(
              `SELECT requests, errors_5xx, histogram FROM rollup_day
               WHERE endpoint_id = ? AND version_id IN (SELECT value FROM json_each(?))`,
            )
            .raw()
            .all(endpointId, ids)
        : db
            .prepare(
              `SELECT requests, errors_5xx, histogram FROM rollup_hour
               WHERE endpoint_id = ? AND version_id IN (SELECT value FROM json_each(?))
                 AND hour >= ? AND hour < ?`,
            )
            .raw()
            .all(
              endpointId,
              ids,
              Math.floor((from ?? 0) / 3_600_000),
              Math.ceil((to ?? Number.MAX_SAFE_INTEGER) / 3_600_000),
            )
    for (const [requests, errors, histogram] of rows as Array<[number, number, Uint8Array]>) {
      distribution.add(requests, errors, histogram)
    }
    return distribution
  }

  const results: Array<EndpointComparison & { tested: boolean }> = []
  for (const endpoint of endpoints) {
    if (wanted !== undefined && !wanted.has(`${endpoint.method} ${endpoint.route}`)) continue
    const [before, after] = sides.map((side) => read(endpoint.id, side)) as [
      Distribution,
      Distribution,
    ]
    if (before.requests === 0 && after.requests === 0) continue
    const figures = (d: Distribution): SideFigures => ({
      requests: d.requests,
      medianUs: d.quantile(0.5),
      p95Us: d.quantile(0.95),
      errorRate: d.requests === 0 ? null : d.errors5xx / d.requests,
    })
    const baseline = figures(before)
    const candidate = figures(after)
    const change = (a: number | null, b: number | null) =>
      a === null || b === null || a === 0 ? null : ((b - a) / a) * 100
    const medianChangeMs =
      baseline.medianUs === null || candidate.medianUs === null
        ? null
        : (candidate.medianUs - baseline.medianUs) / 1000
    const enough = before.requests >= minRequests && after.requests >= minRequests
    let pValue: number | null = null
    if (enough) {
      // Mood's test from the histograms: above and at-or-below the pooled median.
      const pooled = new Distribution()
      pooled.requests = before.requests + after.requests
      for (let b = 0; b < BUCKET_COUNT; b++) {
        pooled.histogram[b] = before.histogram[b]! + after.histogram[b]!
      }
      const median = pooled.quantile(0.5)!
      const aboveBefore = before.above(median)
      const aboveAfter = after.above(median)
      pValue = medianTableTest([
        [aboveBefore, aboveAfter],
        [before.requests - aboveBefore, after.requests - aboveAfter],
      ]).pValue
    }
    results.push({
      method: endpoint.method,
      route: endpoint.route,
      baseline,
      candidate,
      medianChangePercent: change(baseline.medianUs, candidate.medianUs),
      medianChangeMs,
      p95ChangePercent: change(baseline.p95Us, candidate.p95Us),
      pValue,
      adjustedPValue: null,
      verdict: enough ? 'no change' : 'too few requests',
      impact: medianChangeMs === null ? 0 : medianChangeMs * after.requests,
      tested: enough,
    })
  }
  const tested = results.filter((r) => r.tested)
  const adjusted = holm(tested.map((r) => r.pValue!))
  tested.forEach((r, i) => {
    r.adjustedPValue = adjusted[i]!
    const big =
      Math.abs(r.medianChangePercent ?? 0) >= minChangePercent &&
      Math.abs(r.medianChangeMs ?? 0) >= minChangeMs
    if (r.adjustedPValue < alpha && big)
      r.verdict = (r.medianChangeMs ?? 0) > 0 ? 'slower' : 'faster'
  })
  const ordered = results
    .map(({ tested: _tested, ...r }) => r)
    .sort((a, b) => Math.abs(b.impact) - Math.abs(a.impact))
  const named = (i: number) => ({
    ...sides[i]!.side,
    versionNames: sides[i]!.versions.map((v) => v.name),
  })
  return {
    baseline: named(0),
    candidate: named(1),
    method:
      "from the rollups' duration histograms: medians and p95 within 4.43% (a bucket); " +
      "Mood's median test on the requests above and below the pooled median, Holm's correction",
    endpoints: ordered,
  }
}
