/**
 * Seeded randomness for the traffic generator: the same seed gives the same
 * numbers on every platform, and nothing here allocates per draw.
 */

/** sfc32 (Chris Doty-Humphrey's small fast counter), seeded through splitmix32. */
export class Random {
  private a: number
  private b: number
  private c: number
  private d = 1
  /** the second value of the last Box-Muller pair, not yet used */
  private spare = Number.NaN

  constructor(seed: number) {
    let s = seed >>> 0
    const splitmix = (): number => {
      s = (s + 0x9e3779b9) | 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = splitmix()
    this.b = splitmix()
    this.c = splitmix()
    for (let i = 0; i < 12; i++) this.next()
  }

  /** Uniform in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return (t >>> 0) / 4_294_967_296
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** Uniform in [low, high). */
  between(low: number, high: number): number {
    return low + (high - low) * this.next()
  }

  /** log-uniform in [low, high): as many values per decade. */
  logBetween(low: number, high: number): number {
    return low * Math.exp(Math.log(high / low) * this.next())
  }

  /** Standard normal (Box-Muller, both values of each pair used). */
  normal(): number {
    const spare = this.spare
    if (spare === spare) {
      this.spare = Number.NaN
      return spare
    }
    const u = 1 - this.next() // (0, 1]: log(u) is finite
    const v = this.next()
    const r = Math.sqrt(-2 * Math.log(u))
    this.spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }

  /** A Poisson count (the normal approximation for large means). */
  poisson(mean: number): number {
    if (mean <= 0) return 0
    if (mean > 40) return Math.max(0, Math.round(mean + Math.sqrt(mean) * this.normal()))
    const limit = Math.exp(-mean)
    let k = 0
    let p = this.next()
    while (p > limit) {
      k++
      p *= this.next()
    }
    return k
  }

  /** An element chosen with probability weightOf(item) / total (a few items: a linear scan). */
  weighted<T>(items: readonly T[], weightOf: (item: T) => number, total: number): T {
    let r = this.next() * total
    for (const item of items) {
      r -= weightOf(item)
      if (r < 0) return item
    }
    return items[items.length - 1]!
  }

  /** Pareto with minimum 1 and shape `alpha`: a few very large values. */
  pareto(alpha: number): number {
    return (1 - this.next()) ** (-1 / alpha)
  }

  /** An element chosen uniformly. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!
  }

  /** Shuffles in place (Fisher-Yates). */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const swap = items[i]!
      items[i] = items[j]!
      items[j] = swap
    }
    return items
  }
}

/**
 * Vose's alias table: picks index i with probability weights[i] / sum in
 * constant time, whatever the number of weights.
 */
export class AliasTable {
  readonly size: number
  private readonly probability: Float64Array
  private readonly alias: Uint32Array

  constructor(weights: ArrayLike<number>) {
    const n = weights.length
    if (n === 0) throw new RangeError('AliasTable: no weights')
    let sum = 0
    for (let i = 0; i < n; i++) {
      const w = weights[i]!
      if (!(w >= 0) || !Number.isFinite(w)) throw new RangeError(`AliasTable: bad weight ${w}`)
      sum += w
    }
    if (sum <= 0) throw new RangeError('AliasTable: the weights add up to 0')
    this.size = n
    this.probability = new Float64Array(n)
    this.alias = new Uint32Array(n)
    const scaled = new Float64Array(n)
    const small: number[] = []
    const large: number[] = []
    for (let i = 0; i < n; i++) {
      scaled[i] = (weights[i]! * n) / sum
      if (scaled[i]! < 1) small.push(i)
      else large.push(i)
    }
    while (small.length > 0 && large.length > 0) {
      const s = small.pop()!
      const l = large.pop()!
      this.probability[s] = scaled[s]!
      this.alias[s] = l
      scaled[l] = scaled[l]! + scaled[s]! - 1
      if (scaled[l]! < 1) small.push(l)
      else large.push(l)
    }
    // What is left is 1 up to rounding.
    for (const i of large) this.probability[i] = 1
    for (const i of small) this.probability[i] = 1
  }

  pick(random: Random): number {
    const x = random.next() * this.size
    const i = Math.floor(x)
    return x - i < this.probability[i]! ? i : this.alias[i]!
  }
}
