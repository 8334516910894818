/*
 * Sampling of raw request rows at high traffic, in the writer (never on the
 * request path): per endpoint, rows beyond `rowsPerSecond` (after a minute's
 * burst) are left out of the `request` table while the rollups still count
 * every request. Each kept row's weight is the number of requests it stands
 * for, so that views reading raw rows stay unbiased; errors, aborted
 * requests and outliers are always kept, with weight 1.
 */

/** Seconds of rows an endpoint may write at once before sampling starts. */
export const BURST_SECONDS = 60

/** A request row that is never sampled away. */
export function alwaysKept(status: number, flags: number): boolean {
  return status >= 400 || flags !== 0
}

/** Flags of a row as the collector hands it over: bit 0 aborted, bit 1 an outlier. */
export const ROW_ABORTED = 1
export const ROW_OUTLIER = 2

interface Bucket {
  tokens: number
  at: number
}

export class Sampler {
  private readonly buckets = new Map<object, Bucket>()

  /**
   * Chooses the rows to keep: `weights[i]` is set to 0 for a row left out,
   * else to the requests it stands for (their sum over a batch equals the
   * batch's rows). `rate`: rows per endpoint and second; null keeps all.
   */
  choose(
    count: number,
    endpointOf: (i: number) => object,
    keepAlways: (i: number) => boolean,
    rate: number | null,
    now: number,
    weights: Int32Array,
  ): number {
    weights.fill(1, 0, count)
    if (rate === null) {
      this.buckets.clear()
      return 0
    }
    // The candidates of each endpoint, in order.
    const candidates = new Map<object, number[]>()
    for (let i = 0; i < count; i++) {
      if (keepAlways(i)) continue
      const endpoint = endpointOf(i)
      let list = candidates.get(endpoint)
      if (list === undefined) candidates.set(endpoint, (list = []))
      list.push(i)
    }
    let dropped = 0
    for (const [endpoint, rows] of candidates) {
      const bucket = this.refill(endpoint, rate, now)
      const n = rows.length
      if (n <= bucket.tokens) {
        bucket.tokens -= n
        continue
      }
      // At least one row a batch, so that every left-out request is in some kept row's weight.
      const k = Math.max(1, Math.floor(bucket.tokens))
      bucket.tokens -= k
      for (let group = 0; group < k; group++) {
        const start = Math.ceil((group * n) / k)
        const end = Math.ceil(((group + 1) * n) / k)
        // A random member of each group: the first would favour the batch's early requests.
        const chosen = start + Math.floor(Math.random() * (end - start))
        for (let j = start; j < end; j++) weights[rows[j]!] = j === chosen ? end - start : 0
        dropped += end - start - 1
      }
    }
    return dropped
  }

  private refill(endpoint: object, rate: number, now: number): Bucket {
    const capacity = rate * BURST_SECONDS
    let bucket = this.buckets.get(endpoint)
    if (bucket === undefined) {
      bucket = { tokens: capacity, at: now }
      this.buckets.set(endpoint, bucket)
    } else {
      bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.at) / 1000) * rate)
      bucket.at = now
    }
    return bucket
  }
}
