/**
 * Statistics and time buckets used by the views. Pure functions: no SQLite,
 * no clock. Durations are whatever unit the caller passes (microseconds in
 * practice); times are ms since the epoch.
 */
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
