/**
 * Duration histograms of the rollup tables: the pure part (bucketing,
 * encoding, merging), shared by the collector that writes them and the
 * desktop app that reads them. No SQLite here.
 *
 * Buckets are 1/16 of an octave wide: bucket k + 1 holds the durations d
 * (integer µs) with ceil(2^(k/16)) <= d < ceil(2^((k+1)/16)), so a bucket's
 * upper bound is at most 2^(1/16) ≈ 1.0443 times its lower bound, plus 1 µs
 * of rounding. Bucket 0 holds 0 µs; the last bucket also takes everything
 * from 2^44 µs (203 days) up.
 */

/** Buckets per octave. */
export const BUCKETS_PER_OCTAVE = 16
/** Largest power of two below which durations keep their own bucket (2^44 µs ≈ 203 days). */
const MAX_OCTAVE = 44
const LAST_K = BUCKETS_PER_OCTAVE * MAX_OCTAVE
/** Number of buckets, including bucket 0 (for 0 µs). */
export const BUCKET_COUNT = LAST_K + 2

/**
 * Relative width of a bucket: any two durations in one bucket differ by at
 * most this fraction of the smaller one, plus 1 µs.
 */
export const BUCKET_RELATIVE_WIDTH = 2 ** (1 / BUCKETS_PER_OCTAVE) - 1

/** LOWER[k] = ceil(2^(k/16)): the smallest duration of bucket k + 1. */
const LOWER = new Float64Array(LAST_K + 2)
for (let k = 0; k <= LAST_K + 1; k++) LOWER[k] = Math.ceil(2 ** (k / BUCKETS_PER_OCTAVE))

/** The bucket of a duration in µs. */
export function bucketOf(durationUs: number): number {
  if (!(durationUs >= 1)) return 0
  if (durationUs >= LOWER[LAST_K]!) return LAST_K + 1
  // A first guess from the logarithm, corrected against the integer bounds.
  let k = Math.floor(Math.log2(durationUs) * BUCKETS_PER_OCTAVE)
  if (k > LAST_K) k = LAST_K
  while (k < LAST_K && LOWER[k + 1]! <= durationUs) k++
  while (k > 0 && LOWER[k]! > durationUs) k--
  return k + 1
}

/** The durations a bucket holds: [low, high), in µs. */
export function bucketBounds(bucket: number): { low: number; high: number } {
  if (bucket <= 0) return { low: 0, high: 1 }
  if (bucket > LAST_K) return { low: LOWER[LAST_K]!, high: Number.MAX_SAFE_INTEGER }
  return { low: LOWER[bucket - 1]!, high: LOWER[bucket]! }
}

/** A histogram being built: bucket → count. */
export type SparseHistogram = Map<number, number>

export function addToHistogram(histogram: SparseHistogram, bucket: number, count = 1): void {
  histogram.set(bucket, (histogram.get(bucket) ?? 0) + count)
}

/**
 * Encodes a histogram as the rollup tables store it: for each non-empty
 * bucket in increasing order, the gap since the previous one (LEB128
 * varint) then its count (varint). About two or three bytes a bucket.
 */
export function encodeHistogram(histogram: SparseHistogram): Buffer {
  const buckets = [...histogram.keys()].filter((b) => histogram.get(b)! > 0).sort((a, b) => a - b)
  const bytes: number[] = []
  let previous = -1
  for (const bucket of buckets) {
    writeVarint(bytes, bucket - previous - 1)
    writeVarint(bytes, histogram.get(bucket)!)
    previous = bucket
  }
  return Buffer.from(bytes)
}

/** Room for any histogram: two varints of at most 2 and 5 bytes per bucket. */
const runBytes = Buffer.alloc(BUCKET_COUNT * 7)

/**
 * Encodes the durations' buckets of one rollup row, given as a list with one
 * entry per request (any order; sorted here, in place), as encodeHistogram
 * would encode their counts.
 */
export function encodeBuckets(buckets: Uint16Array): Buffer {
  buckets.sort()
  return Buffer.from(
    runBytes.subarray(0, putSortedBuckets(runBytes, 0, buckets, 0, buckets.length)),
  )
}

/**
 * Writes the encoding of the sorted buckets [from, to) into `target` from
 * `at` (room for 7 bytes a distinct bucket: at most 7 bytes a request);
 * returns where it ends.
 */
export function putSortedBuckets(
  target: Uint8Array,
  at: number,
  sorted: ArrayLike<number>,
  from: number,
  to: number,
): number {
  let previous = -1
  let i = from
  while (i < to) {
    const entry = sorted[i]!
    let end = i + 1
    while (end < to && sorted[end] === entry) end++
    if (at + 12 > target.length)
      throw new RangeError('routemeter: more buckets than a histogram has')
    at = putVarint(target, at, entry - previous - 1)
    at = putVarint(target, at, end - i)
    previous = entry
    i = end
  }
  return at
}

/**
 * Writes the encoding of a histogram given as dense counts, `counts[from + i]`
 * for bucket `firstBucket + i` up to `to`, into `target` from `at` (room for 7
 * bytes a non-empty bucket); returns where it ends. The bytes of putSortedBuckets.
 */
export function putBucketCounts(
  target: Uint8Array,
  at: number,
  counts: ArrayLike<number>,
  from: number,
  to: number,
  firstBucket: number,
): number {
  let previous = -1
  for (let b = from; b < to; b++) {
    const count = counts[b]!
    if (count === 0) continue
    if (at + 12 > target.length)
      throw new RangeError('routemeter: more buckets than a histogram has')
    const bucket = firstBucket + b - from
    at = putVarint(target, at, bucket - previous - 1)
    at = putVarint(target, at, count)
    previous = bucket
  }
  return at
}

function writeVarint(bytes: number[], value: number): void {
  let rest = value
  while (rest >= 0x80) {
    bytes.push((rest % 0x80) | 0x80)
    rest = Math.floor(rest / 0x80)
  }
  bytes.push(rest)
}

/**
 * Adds an encoded histogram's counts into `target` (dense: index = bucket).
 * Throws on bytes that are not a histogram rather than return wrong counts.
 */
export function addEncodedHistogram(target: Float64Array | number[], encoded: Uint8Array): void {
  let bucket = -1
  let i = 0
  const n = encoded.length
  while (i < n) {
    // gap
    let gap = 0
    let scale = 1
    let byte: number
    do {
      if (i >= n) throw new RangeError('routemeter: a rollup histogram is cut short')
      byte = encoded[i++]!
      gap += (byte & 0x7f) * scale
      scale *= 0x80
    } while (byte >= 0x80)
    let count = 0
    scale = 1
    do {
      if (i >= n) throw new RangeError('routemeter: a rollup histogram is cut short')
      byte = encoded[i++]!
      count += (byte & 0x7f) * scale
      scale *= 0x80
    } while (byte >= 0x80)
    bucket += gap + 1
    if (bucket >= BUCKET_COUNT) throw new RangeError('routemeter: a rollup histogram is damaged')
    target[bucket] = (target[bucket] ?? 0) + count
  }
}

/** Reads one varint of `bytes` at `state.at`, advancing it. */
function readVarint(bytes: Uint8Array, state: { at: number }): number {
  let value = 0
  let scale = 1
  let byte: number
  do {
    if (state.at >= bytes.length)
      throw new RangeError('routemeter: a rollup histogram is cut short')
    byte = bytes[state.at++]!
    value += (byte & 0x7f) * scale
    scale *= 0x80
  } while (byte >= 0x80)
  return value
}

function putVarint(out: Uint8Array, at: number, value: number): number {
  let rest = value
  while (rest >= 0x80) {
    out[at++] = (rest % 0x80) | 0x80
    rest = Math.floor(rest / 0x80)
  }
  out[at++] = rest
  return at
}

/**
 * The sum of two encoded histograms, encoded: one pass over both, without
 * decoding (the writer runs this for every rollup row a batch touches).
 */
export function mergeEncodedHistograms(a: Uint8Array, b: Uint8Array): Buffer {
  // A sum has at most the buckets of both, and each count takes at most 1 byte more.
  const out = Buffer.allocUnsafe(a.length + b.length + 16)
  const sa = { at: 0 }
  const sb = { at: 0 }
  let bucketA = a.length > 0 ? readVarint(a, sa) : Number.POSITIVE_INFINITY
  let bucketB = b.length > 0 ? readVarint(b, sb) : Number.POSITIVE_INFINITY
  let previous = -1
  let at = 0
  while (bucketA !== Number.POSITIVE_INFINITY || bucketB !== Number.POSITIVE_INFINITY) {
    const bucket = Math.min(bucketA, bucketB)
    let count = 0
    if (bucketA === bucket) {
      count += readVarint(a, sa)
      bucketA = sa.at < a.length ? bucketA + readVarint(a, sa) + 1 : Number.POSITIVE_INFINITY
    }
    if (bucketB === bucket) {
      count += readVarint(b, sb)
      bucketB = sb.at < b.length ? bucketB + readVarint(b, sb) + 1 : Number.POSITIVE_INFINITY
    }
    if (bucket >= BUCKET_COUNT) throw new RangeError('routemeter: a rollup histogram is damaged')
    if (at + 16 > out.length) throw new RangeError('routemeter: a rollup histogram is damaged')
    at = putVarint(out, at, bucket - previous - 1)
    at = putVarint(out, at, count)
    previous = bucket
  }
  return Buffer.from(out.subarray(0, at))
}

/** Decodes an encoded histogram into a sparse one. */
export function decodeHistogram(encoded: Uint8Array): SparseHistogram {
  const dense = new Float64Array(BUCKET_COUNT)
  addEncodedHistogram(dense, encoded)
  const histogram: SparseHistogram = new Map()
  for (let b = 0; b < BUCKET_COUNT; b++) if (dense[b]! > 0) histogram.set(b, dense[b]!)
  return histogram
}

/** Adds the counts of `encoded` into `histogram`. */
export function mergeEncodedInto(histogram: SparseHistogram, encoded: Uint8Array): void {
  for (const [bucket, count] of decodeHistogram(encoded)) addToHistogram(histogram, bucket, count)
}

/** Hours and days of the rollup tables: UTC, counted from the Unix epoch. */
export const MS_PER_HOUR = 3_600_000
export const MS_PER_DAY = 86_400_000

export function hourOf(time: number): number {
  return Math.floor(time / MS_PER_HOUR)
}

export function dayOf(time: number): number {
  return Math.floor(time / MS_PER_DAY)
}

/** node_id and user_group_id of a rollup row for requests that have none (ids start at 1). */
export const NO_ID = 0

/**
 * endpoint_id of the rollup_status rows that count all endpoints together:
 * the views over every endpoint read a tenth of the rows (endpoint ids start at 1).
 */
export const ALL_ENDPOINTS = 0
