/*
 * What did a release change? Per endpoint, a baseline and a candidate (each
 * some versions, or a time range): the requests, quantiles and error rate of
 * each side, and a verdict from Mood's median test (or the Mann-Whitney U
 * test) with Holm's correction over the endpoints compared. Exact from the
 * raw requests while all of a side's are still stored, else from the rollups'
 * histograms: there Mood's table splits the bucket that holds the pooled
 * median in proportion and Mann-Whitney takes a bucket as a group of ties
 * (durations within a bucket differ by at most 4.43%, less than the minimum
 * effect of a verdict).
 */
import type Database from 'better-sqlite3'
import { addEncodedHistogram, bucketBounds, BUCKET_COUNT, NO_ID } from '../schema/rollup.js'
import {
  holm,
  mannWhitneyGrouped,
  mannWhitneyU,
  medianTableTest,
  moodMedianTest,
  sortedQuantile,
} from './statistics.js'
import type {
  CompareOptions,
  CompareTest,
  Comparison,
  EndpointComparison,
  Side,
  SideFigures,
} from './types.js'

export type {
  CompareOptions,
  CompareTest,
  Comparison,
  EndpointComparison,
  Side,
  SideFigures,
  Verdict,
} from './types.js'

const HOUR_MS = 3_600_000
/** the last hour a time in ms can be in (an open range's end) */
const MAX_HOUR = Math.floor(Number.MAX_SAFE_INTEGER / HOUR_MS)

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

/** requests, errors_5xx, sum_us, min_us, max_us, histogram: what a side reads of a rollup row */
type RollupRow = [number, number, number, number, number, Uint8Array]

/** Histograms and counts of one endpoint on one side. */
class Distribution {
  readonly histogram = new Float64Array(BUCKET_COUNT)
  requests = 0
  errors5xx = 0
  sumUs = 0
  minUs = Number.POSITIVE_INFINITY
  maxUs = 0

  add(row: RollupRow): void {
    const [requests, errors5xx, sumUs, minUs, maxUs, histogram] = row
    this.requests += requests
    this.errors5xx += errors5xx
    this.sumUs += sumUs
    this.minUs = Math.min(this.minUs, minUs)
    this.maxUs = Math.max(this.maxUs, maxUs)
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
 * A side's requests are read one by one (exact figures) while each side has
 * at most this many and the comparison has scanned fewer than
 * `options.exactRows` rows (an endpoint's requests are read among the others of their hours):
 * beyond, a histogram's 4.43% is far below any effect worth a verdict, and
 * reading rows would cost more than the answer is worth.
 */
const EXACT_LIMIT = 20_000
const EXACT_ROWS = 1_000_000

/** One side of one endpoint: its histogram, and its durations when every request is stored raw. */
interface SideSample {
  histogram: Distribution
  /** µs, ascending; null when some of the side's requests were sampled away or pruned */
  exact: Float64Array | null
}

function figures(sample: SideSample): SideFigures {
  const { histogram: d, exact } = sample
  const q = (p: number): number | null =>
    d.requests === 0 ? null : exact !== null ? sortedQuantile(exact, p) : d.quantile(p)
  return {
    requests: d.requests,
    medianUs: q(0.5),
    p95Us: q(0.95),
    p5Us: q(0.05),
    p25Us: q(0.25),
    p75Us: q(0.75),
    minUs: d.requests === 0 ? null : d.minUs,
    maxUs: d.requests === 0 ? null : d.maxUs,
    meanUs: d.requests === 0 ? null : d.sumUs / d.requests,
    errorRate: d.requests === 0 ? null : d.errors5xx / d.requests,
  }
}

/** The test's p on two samples: from the durations when both are exact, else from the histograms. */
function pValueOf(test: CompareTest, before: SideSample, after: SideSample): number {
  if (before.exact !== null && after.exact !== null) {
    const [a, b] = [Array.from(before.exact), Array.from(after.exact)]
    return test === 'mood' ? moodMedianTest(a, b).pValue : mannWhitneyU(a, b).pValue
  }
  const [x, y] = [before.histogram, after.histogram]
  if (test === 'mann-whitney') return mannWhitneyGrouped(x.histogram, y.histogram).pValue
  // Mood's test from the histograms: above and at-or-below the pooled median.
  const pooled = new Distribution()
  pooled.requests = x.requests + y.requests
  for (let b = 0; b < BUCKET_COUNT; b++) pooled.histogram[b] = x.histogram[b]! + y.histogram[b]!
  const median = pooled.quantile(0.5)!
  const [aboveX, aboveY] = [x.above(median), y.above(median)]
  return medianTableTest([
    [aboveX, aboveY],
    [x.requests - aboveX, y.requests - aboveY],
  ]).pValue
}

/**
 * Compares two sides per endpoint: from the raw requests when all of a
 * side's are still stored (and there are few enough to read), else from the
 * rollups (rollup_day for the whole UTC days of a range, rollup_hour for the
 * hours at its ends). Throws a TypeError when a side names a version the file does
 * not have.
 */
export function compareReleases(db: Database.Database, options: CompareOptions): Comparison {
  const minRequests = options.minRequests ?? 30
  const minChangePercent = options.minChangePercent ?? 5
  const minChangeMs = options.minChangeMs ?? 1
  const alpha = options.alpha ?? 0.05
  const test = options.test ?? 'mood'
  const versions = readVersions(db)
  const sides = [options.baseline, options.candidate].map((side, i) => {
    const chosen = versionsOf(versions, side)
    if (side.versions !== undefined && side.versions.length > 0 && chosen.length === 0) {
      throw new TypeError(
        `routemeter: the ${i === 0 ? 'baseline' : 'candidate'} names no version in this file: ${side.versions.join(', ')}`,
      )
    }
    // The rollups' grain: whole hours, read as whole UTC days where they make some.
    const fromHour = Math.floor((side.from ?? 0) / HOUR_MS)
    const toHour = Math.min(MAX_HOUR, Math.ceil((side.to ?? Number.MAX_SAFE_INTEGER) / HOUR_MS))
    const firstDay = Math.ceil(fromHour / 24)
    const endDay = Math.floor(toHour / 24)
    const wholeDays = firstDay < endDay
    return {
      side,
      versions: chosen,
      ids: JSON.stringify(chosen.map((v) => v.id)),
      fromHour,
      toHour,
      days: wholeDays ? [[firstDay, endDay]] : [],
      hours: wholeDays
        ? [
            [fromHour, firstDay * 24],
            [endDay * 24, toHour],
          ].filter(([a, b]) => a! < b!)
        : [[fromHour, toHour]],
    }
  })
  const endpoints = db.prepare('SELECT id, method, route FROM endpoint').all() as Array<{
    id: number
    method: string
    route: string
  }>
  const wanted = options.endpoints === undefined ? undefined : new Set(options.endpoints)
  const byDay = db.prepare(
    `SELECT requests, errors_5xx, sum_us, min_us, max_us, histogram FROM rollup_day
     WHERE endpoint_id = ? AND version_id IN (SELECT value FROM json_each(?))
       AND day >= ? AND day < ?`,
  )
  const byHour = db.prepare(
    `SELECT requests, errors_5xx, sum_us, min_us, max_us, histogram FROM rollup_hour
     WHERE endpoint_id = ? AND version_id IN (SELECT value FROM json_each(?))
       AND hour >= ? AND hour < ?`,
  )
  const columnsOf = (table: string) =>
    new Set(
      (db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map(
        (c) => c.name,
      ),
    )
  // A row that stands for sampled-away requests (weight > 1) is not read: the side is then not exact.
  const weighted = columnsOf('request').has('weight') ? 'AND r.weight = 1' : ''
  const rawRows = columnsOf('rollup_hour').has('first_id')
    ? // Since schema 5 the requests have no index by endpoint: an endpoint's requests of
      // an hour lie between its rollup_hour row's first_id and last_id.
      {
        cost: db.prepare(
          `SELECT coalesce(sum(last_id - first_id + 1), 0), count(*) - count(first_id)
           FROM rollup_hour
           WHERE endpoint_id = ? AND version_id IN (SELECT value FROM json_each(?))
             AND hour >= ? AND hour < ?`,
        ),
        read: db.prepare(
          `SELECT r.duration_us FROM rollup_hour h
             JOIN request r NOT INDEXED ON r.id BETWEEN h.first_id AND h.last_id
           WHERE h.endpoint_id = ? AND h.version_id IN (SELECT value FROM json_each(?))
             AND h.hour >= ? AND h.hour < ?
             AND r.endpoint_id = h.endpoint_id AND r.version_id = h.version_id
             AND coalesce(r.node_id, ${NO_ID}) = h.node_id
             AND r.time >= h.hour * ${HOUR_MS} AND r.time < (h.hour + 1) * ${HOUR_MS} ${weighted}`,
        ),
      }
    : {
        cost: undefined,
        read: db.prepare(
          `SELECT r.duration_us FROM request r
           WHERE r.endpoint_id = ? AND r.version_id IN (SELECT value FROM json_each(?))
             AND r.time >= ? * ${HOUR_MS} AND r.time < ? * ${HOUR_MS} ${weighted}`,
        ),
      }
  let budget = options.exactRows ?? EXACT_ROWS
  const read = (endpointId: number, side: (typeof sides)[number]): SideSample => {
    const histogram = new Distribution()
    for (const [from, to] of side.days) {
      for (const row of byDay.raw().all(endpointId, side.ids, from, to) as RollupRow[]) {
        histogram.add(row)
      }
    }
    for (const [from, to] of side.hours) {
      for (const row of byHour.raw().all(endpointId, side.ids, from, to) as RollupRow[]) {
        histogram.add(row)
      }
    }
    return { histogram, exact: null }
  }
  /**
   * Every request of the side, when the raw rows still hold them all (as many
   * as the rollups count) and reading them fits the budget.
   */
  const readExact = (endpointId: number, side: (typeof sides)[number], sample: SideSample) => {
    const at = [endpointId, side.ids, side.fromHour, side.toHour] as const
    if (rawRows.cost !== undefined) {
      const [rows, unspanned] = rawRows.cost.raw().get(...at) as [number, number]
      if (unspanned > 0 || rows > budget) return
      budget -= rows
    } else {
      budget -= sample.histogram.requests
    }
    const durations = Float64Array.from(rawRows.read.pluck().all(...at) as number[])
    if (durations.length === sample.histogram.requests) sample.exact = durations.sort()
  }

  const results: Array<EndpointComparison & { tested: boolean }> = []
  for (const endpoint of endpoints) {
    if (wanted !== undefined && !wanted.has(`${endpoint.method} ${endpoint.route}`)) continue
    const [before, after] = sides.map((side) => read(endpoint.id, side)) as [SideSample, SideSample]
    if (before.histogram.requests === 0 && after.histogram.requests === 0) continue
    const counts = [before.histogram.requests, after.histogram.requests]
    if (Math.max(...counts) <= EXACT_LIMIT && counts[0]! + counts[1]! <= budget) {
      readExact(endpoint.id, sides[0]!, before)
      if (before.exact !== null) readExact(endpoint.id, sides[1]!, after)
    }
    const exact = before.exact !== null && after.exact !== null
    if (!exact) before.exact = after.exact = null
    const baseline = figures(before)
    const candidate = figures(after)
    const change = (a: number | null, b: number | null) =>
      a === null || b === null || a === 0 ? null : ((b - a) / a) * 100
    const medianChangeMs =
      baseline.medianUs === null || candidate.medianUs === null
        ? null
        : (candidate.medianUs - baseline.medianUs) / 1000
    const enough = counts[0]! >= minRequests && counts[1]! >= minRequests
    results.push({
      method: endpoint.method,
      route: endpoint.route,
      baseline,
      candidate,
      medianChangePercent: change(baseline.medianUs, candidate.medianUs),
      medianChangeMs,
      p95ChangePercent: change(baseline.p95Us, candidate.p95Us),
      errorRateChange:
        baseline.errorRate === null || candidate.errorRate === null
          ? null
          : (candidate.errorRate - baseline.errorRate) * 100,
      pValue: enough ? pValueOf(test, before, after) : null,
      adjustedPValue: null,
      verdict: enough ? 'no change' : 'too few requests',
      impact: medianChangeMs === null ? 0 : medianChangeMs * counts[1]!,
      exact,
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
  const exactCount = ordered.filter((e) => e.exact).length
  const source =
    exactCount === ordered.length
      ? 'from every request (all still stored raw)'
      : exactCount === 0
        ? "from the rollups' duration histograms (medians and p95 within 4.43%)"
        : `from every request for ${exactCount} of ${ordered.length} endpoints, from the rollups' duration histograms (within 4.43%) for the others`
  return {
    baseline: named(0),
    candidate: named(1),
    test,
    method: `${source}; ${test === 'mood' ? "Mood's median test" : 'the Mann-Whitney U test'}, Holm's correction over the endpoints`,
    endpoints: ordered,
  }
}
