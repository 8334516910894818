/**
 * Histogram counting: a list of aggregates and the duration bucket of each request
 * they count, encoded as the rollup tables' histograms (dense or sorted counting).
 */
import { BUCKET_COUNT, putBucketCounts, putSortedBuckets } from '../../schema/rollup.js'

/** Counts and durations of the requests of one rollup row. */
export interface Aggregate {
  key: number[]
  /** its place in its AggregateList, under which the buckets of its requests are filed */
  index: number
  requests: number
  errors4xx: number
  errors5xx: number
  sumUs: number
  minUs: number
  maxUs: number
}

/** Bits of a bucket number in an AggregateList's entries. */
export const BUCKET_BITS = 10
export const BUCKET_SPAN = 2 ** BUCKET_BITS
if (BUCKET_COUNT > BUCKET_SPAN) throw new Error('routemeter: bucket numbers need more bits')
/** Aggregates one list can hold: its entries are 32 bits. */
export const MAX_AGGREGATES = 2 ** (32 - BUCKET_BITS)

/**
 * Aggregates, and the duration bucket of each request they count: one list of
 * entries for all of them, each (aggregate index, bucket) in 32 bits, grouped
 * by aggregate when encoded (cheaper than a typed array per aggregate).
 */
export class AggregateList<T extends Aggregate> {
  readonly items: T[] = []
  private entries = new Uint32Array(1024)
  private length = 0

  add(agg: T): T {
    if (this.items.length >= MAX_AGGREGATES) {
      throw new RangeError(`routemeter: more than ${MAX_AGGREGATES} rollup rows in one count`)
    }
    agg.index = this.items.length
    this.items.push(agg)
    return agg
  }

  /** Counts a request into one of this list's aggregates. */
  count(into: T, durationUs: number, status: number, bucket: number): void {
    into.requests++
    if (status >= 400 && status < 500) into.errors4xx++
    else if (status >= 500 && status < 600) into.errors5xx++
    into.sumUs += durationUs
    if (durationUs < into.minUs) into.minUs = durationUs
    if (durationUs > into.maxUs) into.maxUs = durationUs
    this.push(into.index * BUCKET_SPAN + bucket)
  }

  /**
   * Adds the aggregates of another list into this one's: `into[i]` takes the
   * counts and buckets of `other.items[i]`.
   */
  addList(other: AggregateList<Aggregate>, into: readonly T[]): void {
    other.items.forEach((agg, i) => {
      const target = into[i]!
      target.requests += agg.requests
      target.errors4xx += agg.errors4xx
      target.errors5xx += agg.errors5xx
      target.sumUs += agg.sumUs
      target.minUs = Math.min(target.minUs, agg.minUs)
      target.maxUs = Math.max(target.maxUs, agg.maxUs)
    })
    for (let e = 0; e < other.length; e++) {
      const entry = other.entries[e]!
      this.push(into[entry >>> BUCKET_BITS]!.index * BUCKET_SPAN + (entry & (BUCKET_SPAN - 1)))
    }
  }

  /** The encoded histogram of each aggregate, in the order of `items`. */
  histograms(): Buffer[] {
    return histogramsOfEntries(this.entries, this.length, this.items.length)
  }

  private push(entry: number): void {
    if (this.length === this.entries.length) {
      const grown = new Uint32Array(this.length * 2)
      grown.set(this.entries)
      this.entries = grown
    }
    this.entries[this.length++] = entry
  }
}

/**
 * Dense counting (a count per aggregate and bucket between the smallest and
 * the largest bucket of the entries, then a scan of those) is used while it
 * scans at most this many buckets a request: a batch's hours and days, and
 * the per-client rows of most traffic, whose durations span a few octaves.
 */
export const DENSE_BUCKETS_PER_ENTRY = 8

/**
 * The encoded histogram of each of `aggregates` aggregates, from `entries`
 * (aggregate index * BUCKET_SPAN + bucket: one a request, in any order).
 * `dense` chooses the method (tests compare both); they give the same bytes.
 * Each loop over the entries is in a function of its own: with several in
 * one, V8 compiled the first that got hot (on-stack replacement) and bailed
 * out at the next, which had not run yet, on every call (--trace-deopt:
 * "insufficient type feedback"), so the rest ran unoptimized.
 */
export function histogramsOfEntries(
  entries: Uint32Array,
  length: number,
  aggregates: number,
  dense?: boolean,
): Buffer[] {
  const n = aggregates
  const range = bucketRange(entries, length)
  const span = length === 0 ? 0 : range.high - range.low + 1
  // At most 7 bytes a request (a bucket's gap and count), and room for the last check;
  // then copied to a buffer of their size (the one that crosses to a writer thread).
  const room = Buffer.allocUnsafeSlow(7 * length + 12)
  const ends = new Int32Array(n)
  const at =
    (dense ?? n * span <= DENSE_BUCKETS_PER_ENTRY * length)
      ? putDenseHistograms(room, ends, entries, length, range.low, span)
      : putSortedHistograms(room, ends, entries, length)
  const encoded = Buffer.allocUnsafeSlow(at)
  room.copy(encoded, 0, 0, at)
  const histograms = new Array<Buffer>(n)
  for (let a = 0; a < n; a++) histograms[a] = encoded.subarray(a === 0 ? 0 : ends[a - 1], ends[a])
  return histograms
}

/** The smallest and largest bucket of the entries. */
export function bucketRange(entries: Uint32Array, length: number): { low: number; high: number } {
  const mask = BUCKET_SPAN - 1
  let low = mask
  let high = 0
  for (let e = 0; e < length; e++) {
    const bucket = entries[e]! & mask
    if (bucket < low) low = bucket
    if (bucket > high) high = bucket
  }
  return { low, high }
}

/**
 * Counts each aggregate's buckets [low, low + span) densely, then encodes
 * each (`ends[a]`: where aggregate a's bytes end).
 */
export function putDenseHistograms(
  room: Buffer,
  ends: Int32Array,
  entries: Uint32Array,
  length: number,
  low: number,
  span: number,
): number {
  const counts = new Uint32Array(ends.length * span)
  countDense(entries, length, low, span, counts)
  let at = 0
  for (let a = 0; a < ends.length; a++) {
    at = putBucketCounts(room, at, counts, a * span, (a + 1) * span, low)
    ends[a] = at
  }
  return at
}

export function countDense(
  entries: Uint32Array,
  length: number,
  low: number,
  span: number,
  counts: Uint32Array,
): void {
  const mask = BUCKET_SPAN - 1
  for (let e = 0; e < length; e++) {
    const entry = entries[e]!
    counts[(entry >>> BUCKET_BITS) * span + (entry & mask) - low]!++
  }
}

/**
 * Sorts the entries by (aggregate, bucket) with two counting sorts (by
 * bucket, then stably by aggregate: O(entries), no sort per aggregate), then
 * encodes each aggregate's run.
 */
export function putSortedHistograms(
  room: Buffer,
  ends: Int32Array,
  entries: Uint32Array,
  length: number,
): number {
  const n = ends.length
  const bucketMask = BUCKET_SPAN - 1
  const aggregateMask = MAX_AGGREGATES - 1
  const byBucket = new Int32Array(BUCKET_SPAN + 1)
  countKeys(entries, length, 0, bucketMask, byBucket)
  toStarts(byBucket)
  const inBucketOrder = new Uint32Array(length)
  scatterByKey(entries, length, 0, bucketMask, byBucket, inBucketOrder, 0xffffffff)
  const starts = new Int32Array(n + 1)
  countKeys(inBucketOrder, length, BUCKET_BITS, aggregateMask, starts)
  toStarts(starts)
  const next = starts.slice(0, n)
  const buckets = new Uint32Array(length)
  scatterByKey(inBucketOrder, length, BUCKET_BITS, aggregateMask, next, buckets, bucketMask)
  let at = 0
  for (let a = 0; a < n; a++) {
    at = putSortedBuckets(room, at, buckets, starts[a]!, starts[a + 1]!)
    ends[a] = at
  }
  return at
}

/** Counts the entries by key ((entry >>> shift) & mask) into `counts[key + 1]`. */
export function countKeys(
  entries: Uint32Array,
  length: number,
  shift: number,
  mask: number,
  counts: Int32Array,
): void {
  for (let e = 0; e < length; e++) counts[((entries[e]! >>> shift) & mask) + 1]!++
}

/** Turns countKeys' counts into the first place of each key's entries. */
export function toStarts(counts: Int32Array): void {
  for (let k = 1; k < counts.length; k++) counts[k]! += counts[k - 1]!
}

/** Copies the entries, in their order, to the places of their keys (`next`, advanced); keeps `value & keep`. */
export function scatterByKey(
  entries: Uint32Array,
  length: number,
  shift: number,
  mask: number,
  next: Int32Array,
  into: Uint32Array,
  keep: number,
): void {
  for (let e = 0; e < length; e++) {
    const entry = entries[e]!
    into[next[(entry >>> shift) & mask]!++] = (entry & keep) >>> 0
  }
}
