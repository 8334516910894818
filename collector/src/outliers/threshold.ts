/*
 * An endpoint's outlier threshold: `factor` times the median of its recent
 * durations, never below `minDuration`. The median, not FMD's mean, because
 * the outliers it is meant to find would pull a mean up towards themselves.
 * The durations are this process's, so one version's: a new release starts
 * from its own requests.
 */

/** Durations kept per endpoint (the most recent ones). */
export const RECENT_REQUESTS = 256
/** Requests an endpoint needs before anything of it is an outlier. */
export const MIN_REQUESTS = 20
/** How often the median is computed again, ms: it moves slowly and sorting costs. */
const RECOMPUTE_MS = 1000

export class RecentDurations {
  private readonly ring = new Float64Array(RECENT_REQUESTS)
  private readonly sorted = new Float64Array(RECENT_REQUESTS)
  private count = 0
  private next = 0
  private computedAt = -Infinity
  private changed = false
  /** µs; Infinity until MIN_REQUESTS were seen */
  thresholdUs = Number.POSITIVE_INFINITY

  constructor(
    private readonly factor: number,
    private readonly minDurationUs: number,
  ) {}

  /** The hot path at level 2: one store. */
  add(durationUs: number): void {
    this.ring[this.next] = durationUs
    this.next = (this.next + 1) % RECENT_REQUESTS
    if (this.count < RECENT_REQUESTS) this.count++
    this.changed = true
  }

  /** Computes the threshold again if it is stale (the sweep calls this, never a request). */
  refresh(now: number): void {
    if (!this.changed || this.count < MIN_REQUESTS || now - this.computedAt < RECOMPUTE_MS) return
    this.changed = false
    this.computedAt = now
    const n = this.count
    const values = this.sorted.subarray(0, n)
    values.set(this.ring.subarray(0, n))
    values.sort()
    const median = n % 2 === 1 ? values[n >> 1]! : (values[n / 2 - 1]! + values[n / 2]!) / 2
    this.thresholdUs = Math.max(this.minDurationUs, Math.round(this.factor * median))
  }
}
