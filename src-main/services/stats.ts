/**
 * Statistics and time buckets used by the views. Pure functions: no SQLite,
 * no clock. Durations are whatever unit the caller passes (microseconds in
 * practice); times are ms since the epoch.
 */
import {
  addEncodedHistogram,
  BUCKET_COUNT,
  bucketBounds,
  bucketOf,
  BUCKET_RELATIVE_WIDTH,
} from 'routemeter/schema'
import type { BoxStats } from '../api/contract.js'

export const MS_PER_HOUR = 3_600_000
export const MS_PER_DAY = 86_400_000

/**
 * Quantile `p` (0..1) of values sorted ascending, by linear interpolation
 * between closest ranks: Hyndman & Fan's definition 7, the default of R,
 * NumPy and spreadsheets' PERCENTILE.INC, so numbers match what a user
 * computes elsewhere. Position h = (n - 1) p; result x[⌊h⌋] + (h - ⌊h⌋)(x[⌊h⌋+1] - x[⌊h⌋]).
 */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length
  if (n === 0) throw new RangeError('quantile of no values')
  if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile p must be within 0..1, got ${p}`)
  const h = (n - 1) * p
  const lo = Math.floor(h)
  const low = sorted[lo]!
  if (lo + 1 >= n) return low
  return low + (h - lo) * (sorted[lo + 1]! - low)
}

/** The median and 95th percentile of sorted values, or nulls when there is none. */
export function medianAndP95(sorted: ArrayLike<number>): {
  medianUs: number | null
  p95Us: number | null
} {
  if (sorted.length === 0) return { medianUs: null, p95Us: null }
  return { medianUs: quantileSorted(sorted, 0.5), p95Us: quantileSorted(sorted, 0.95) }
}

/**
 * Box-plot statistics of values sorted ascending, or null when empty.
 * Quartiles by `quantileSorted`; whiskers are Tukey's: the most
 * extreme values still within 1.5 IQR of the quartiles.
 */
export function boxStats(sorted: ArrayLike<number>): BoxStats | null {
  const n = sorted.length
  if (n === 0) return null
  const q1 = quantileSorted(sorted, 0.25)
  const median = quantileSorted(sorted, 0.5)
  const q3 = quantileSorted(sorted, 0.75)
  const fence = 1.5 * (q3 - q1)
  const lowFence = q1 - fence
  const highFence = q3 + fence
  let sum = 0
  for (let i = 0; i < n; i++) sum += sorted[i]!
  // Both searches stop at a quartile at the latest: q1 >= lowFence and q3 <= highFence.
  let low = 0
  while (sorted[low]! < lowFence) low++
  let high = n - 1
  while (sorted[high]! > highFence) high--
  return {
    count: n,
    min: sorted[0]!,
    q1,
    median,
    q3,
    max: sorted[n - 1]!,
    whiskerLow: sorted[low]!,
    whiskerHigh: sorted[high]!,
    mean: sum / n,
    p95: quantileSorted(sorted, 0.95),
  }
}

/**
 * A growable list of durations kept in a typed array: 8 bytes a value
 * instead of a JS object per request, and a numeric sort without a comparator.
 */
export class DurationList {
  private values = new Float64Array(64)
  length = 0

  push(value: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2)
      grown.set(this.values)
      this.values = grown
    }
    this.values[this.length++] = value
  }

  /** The values sorted ascending (a view on the list's storage). */
  sorted(): Float64Array {
    return this.values.subarray(0, this.length).sort()
  }
}

/**
 * How far a quantile from a histogram may be from the exact one (R-7 over
 * the same requests): this fraction of the exact value, plus 1 µs.
 */
export const QUANTILE_RELATIVE_ERROR = BUCKET_RELATIVE_WIDTH

/**
 * Hits, errors and durations of a set of requests, added from rollup rows
 * and single requests alike. Counts, sum (so the mean), min and max are
 * exact; quantiles come from the duration histogram (1/16-octave buckets):
 * the i-th smallest duration is taken to lie in its bucket at the i-th of
 * the bucket's evenly spread positions (clipped to min and max), then
 * quantiles interpolate as R-7 does. Each estimate is within
 * QUANTILE_RELATIVE_ERROR of the exact R-7 value, plus 1 µs: both
 * interpolate between durations that share a bucket.
 */
export class DurationSummary {
  count = 0
  errors4xx = 0
  errors5xx = 0
  sumUs = 0
  minUs = Number.POSITIVE_INFINITY
  maxUs = Number.NEGATIVE_INFINITY
  /** counts per bucket; absent for a summary that only counts */
  readonly histogram: Float64Array | undefined

  constructor(withHistogram = true) {
    this.histogram = withHistogram ? new Float64Array(BUCKET_COUNT) : undefined
  }

  /** Adds a rollup row's aggregate (its histogram as the rollup tables encode it). */
  addRollup(
    requests: number,
    errors4xx: number,
    errors5xx: number,
    sumUs: number,
    minUs: number,
    maxUs: number,
    histogram: Uint8Array | undefined,
  ): void {
    this.count += requests
    this.errors4xx += errors4xx
    this.errors5xx += errors5xx
    this.sumUs += sumUs
    if (minUs < this.minUs) this.minUs = minUs
    if (maxUs > this.maxUs) this.maxUs = maxUs
    if (this.histogram !== undefined && histogram !== undefined) {
      addEncodedHistogram(this.histogram, histogram)
    }
  }

  /** Adds another summary's requests. */
  add(other: DurationSummary): void {
    this.count += other.count
    this.errors4xx += other.errors4xx
    this.errors5xx += other.errors5xx
    this.sumUs += other.sumUs
    if (other.minUs < this.minUs) this.minUs = other.minUs
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs
    if (this.histogram !== undefined && other.histogram !== undefined) {
      for (let b = 0; b < BUCKET_COUNT; b++) this.histogram[b]! += other.histogram[b]!
    }
  }

  /** Adds one request. */
  /** One request row; `weight`: the requests it stands for (sampling). */
  addRequest(durationUs: number, status: number, weight = 1): void {
    this.count += weight
    if (status >= 400 && status < 500) this.errors4xx += weight
    else if (status >= 500 && status < 600) this.errors5xx += weight
    this.sumUs += durationUs * weight
    if (durationUs < this.minUs) this.minUs = durationUs
    if (durationUs > this.maxUs) this.maxUs = durationUs
    if (this.histogram !== undefined) this.histogram[bucketOf(durationUs)]! += weight
  }

  /** The durations a bucket stands for, clipped to the summary's min and max. */
  private span(bucket: number): { low: number; high: number } {
    const { low, high } = bucketBounds(bucket)
    return { low: Math.max(low, this.minUs), high: Math.min(high, this.maxUs) }
  }

  /** The estimated i-th smallest duration (0-based). */
  private valueAt(rank: number): number {
    if (rank <= 0) return this.minUs
    if (rank >= this.count - 1) return this.maxUs
    const histogram = this.histogram!
    let below = 0
    for (let bucket = 0; bucket < BUCKET_COUNT; bucket++) {
      const inBucket = histogram[bucket]!
      if (inBucket === 0) continue
      if (rank < below + inBucket) {
        const { low, high } = this.span(bucket)
        return low + ((rank - below + 0.5) / inBucket) * (high - low)
      }
      below += inBucket
    }
    return this.maxUs
  }

  /** Quantile p (0..1), R-7 over the estimated durations. */
  quantile(p: number): number {
    if (this.count === 0) throw new RangeError('quantile of no values')
    const h = (this.count - 1) * p
    const lo = Math.floor(h)
    const low = this.valueAt(lo)
    if (lo + 1 >= this.count) return low
    return low + (h - lo) * (this.valueAt(lo + 1) - low)
  }

  medianAndP95(): { medianUs: number | null; p95Us: number | null } {
    if (this.count === 0) return { medianUs: null, p95Us: null }
    return { medianUs: this.quantile(0.5), p95Us: this.quantile(0.95) }
  }

  /** The smallest estimated duration >= fence (the low whisker). */
  private lowestFrom(fence: number): number {
    if (this.minUs >= fence) return this.minUs
    const histogram = this.histogram!
    for (let bucket = 0; bucket < BUCKET_COUNT; bucket++) {
      const inBucket = histogram[bucket]!
      if (inBucket === 0) continue
      const { low, high } = this.span(bucket)
      if (high < fence) continue
      // The bucket's values are low + ((j + 0.5) / inBucket) * (high - low), rising with j:
      // the first at or above the fence, found without walking counts in the millions.
      const at = high === low ? 0 : Math.ceil(((fence - low) / (high - low)) * inBucket - 0.5)
      const j = Math.max(0, at)
      if (j >= inBucket) continue
      const value = low + ((j + 0.5) / inBucket) * (high - low)
      if (value >= fence) return value
      if (j + 1 < inBucket) return low + ((j + 1.5) / inBucket) * (high - low)
    }
    return this.maxUs
  }

  /** The largest estimated duration <= fence (the high whisker). */
  private highestTo(fence: number): number {
    if (this.maxUs <= fence) return this.maxUs
    const histogram = this.histogram!
    for (let bucket = BUCKET_COUNT - 1; bucket >= 0; bucket--) {
      const inBucket = histogram[bucket]!
      if (inBucket === 0) continue
      const { low, high } = this.span(bucket)
      if (low > fence) continue
      // The last of the bucket's values at or below the fence (see lowestFrom).
      const at =
        high === low ? inBucket - 1 : Math.floor(((fence - low) / (high - low)) * inBucket - 0.5)
      const j = Math.min(inBucket - 1, at)
      if (j < 0) continue
      const value = low + ((j + 0.5) / inBucket) * (high - low)
      if (value <= fence) return value
      if (j - 1 >= 0) return low + ((j - 0.5) / inBucket) * (high - low)
    }
    return this.minUs
  }

  /** Box-plot statistics as boxStats() gives them, from the histogram; null when empty. */
  box(): BoxStats | null {
    if (this.count === 0) return null
    const q1 = this.quantile(0.25)
    const median = this.quantile(0.5)
    const q3 = this.quantile(0.75)
    const fence = 1.5 * (q3 - q1)
    return {
      count: this.count,
      min: this.minUs,
      q1,
      median,
      q3,
      max: this.maxUs,
      // Never inside the box, as with exact values.
      whiskerLow: Math.min(this.lowestFrom(q1 - fence), q1),
      whiskerHigh: Math.max(this.highestTo(q3 + fence), q3),
      mean: this.sumUs / this.count,
      p95: this.quantile(0.95),
    }
  }
}

/** Sorts a copy of `values` ascending. */
export function sortedCopy(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort()
}

/** Minutes east of UTC → ms to add to a UTC time to get local wall-clock time. */
export function offsetMs(utcOffsetMinutes: number): number {
  return utcOffsetMinutes * 60_000
}

/** Number of the local day of `time` (days since 1970-01-01 in that offset). */
export function dayNumber(time: number, utcOffsetMinutes: number): number {
  return Math.floor((time + offsetMs(utcOffsetMinutes)) / MS_PER_DAY)
}

/** 'YYYY-MM-DD' of a day number. */
export function dayLabel(day: number): string {
  return new Date(day * MS_PER_DAY).toISOString().slice(0, 10)
}

/** 'YYYY-MM-DD' of the local day of `time`. */
export function dayKey(time: number, utcOffsetMinutes: number): string {
  return dayLabel(dayNumber(time, utcOffsetMinutes))
}

/** Local hour of day (0-23) of `time`. */
export function hourOfDay(time: number, utcOffsetMinutes: number): number {
  const local = time + offsetMs(utcOffsetMinutes)
  return Math.floor((((local % MS_PER_DAY) + MS_PER_DAY) % MS_PER_DAY) / MS_PER_HOUR)
}

/** Start (UTC ms) of the local day that contains `time`. */
export function startOfLocalDay(time: number, utcOffsetMinutes: number): number {
  return dayNumber(time, utcOffsetMinutes) * MS_PER_DAY - offsetMs(utcOffsetMinutes)
}

/**
 * The local days touched by [from, to), in order: the first day number and
 * the labels. An empty range has no day.
 */
export function daysOfRange(
  from: number,
  to: number,
  utcOffsetMinutes: number,
): { firstDay: number; days: string[] } {
  const firstDay = dayNumber(from, utcOffsetMinutes)
  if (to <= from) return { firstDay, days: [] }
  const lastDay = dayNumber(to - 1, utcOffsetMinutes)
  const days: string[] = []
  for (let day = firstDay; day <= lastDay; day++) days.push(dayLabel(day))
  return { firstDay, days }
}
