/*
 * The statistics of a release comparison, as pure functions on plain arrays:
 * Mood's median test and the Mann-Whitney U test (both two-sided, as SciPy's
 * `median_test` and `mannwhitneyu` compute them by default), and the
 * corrections for testing many endpoints at once (Holm, Benjamini-Hochberg).
 * test/collector/statistics.test.ts checks them against SciPy on the same
 * samples.
 */

/** ln(Γ(1/2)) = ln(√π): the only Γ these tests need (χ² with one degree of freedom, the normal). */
const LN_GAMMA_HALF = 0.5 * Math.log(Math.PI)
const EPSILON = 1e-16
const TINY = 1e-300

/**
 * Q(1/2, x), the regularized upper incomplete gamma function at a = 1/2:
 * a series below x = 1.5, Lentz's continued fraction above, each to full
 * double precision.
 */
function upperGammaHalf(x: number): number {
  if (!(x > 0)) return 1
  const a = 0.5
  const front = Math.exp(-x + a * Math.log(x) - LN_GAMMA_HALF)
  if (x < a + 1) {
    let term = 1 / a
    let sum = term
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n)
      sum += term
      if (Math.abs(term) < Math.abs(sum) * EPSILON) break
    }
    return Math.max(0, 1 - sum * front)
  }
  let b = x + 1 - a
  let c = 1 / TINY
  let d = 1 / b
  let h = d
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a)
    b += 2
    d = an * d + b
    if (Math.abs(d) < TINY) d = TINY
    c = b + an / c
    if (Math.abs(c) < TINY) c = TINY
    d = 1 / d
    const step = d * c
    h *= step
    if (Math.abs(step - 1) < EPSILON) break
  }
  return front * h
}

/** P(X > x) for X χ²-distributed with one degree of freedom. */
export function chiSquare1Survival(x: number): number {
  return upperGammaHalf(x / 2)
}

/** P(Z > z) for a standard normal Z. */
export function normalSurvival(z: number): number {
  const tail = 0.5 * upperGammaHalf((z * z) / 2)
  return z >= 0 ? tail : 1 - tail
}

export interface MedianTestResult {
  /** Pearson's χ² of the 2 x 2 table, with Yates' continuity correction */
  statistic: number
  pValue: number
  /** the median of both samples together */
  grandMedian: number
  /** [above, at or below] the grand median, for each sample */
  table: [above: [number, number], atOrBelow: [number, number]]
}

/** The median of values sorted ascending (the mean of the two middle ones for an even count). */
export function sortedMedian(sorted: ArrayLike<number>): number {
  return sortedQuantile(sorted, 0.5)
}

/** The q-quantile of values sorted ascending, interpolated between neighbours (NumPy's default). */
export function sortedQuantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length
  if (n === 0) return Number.NaN
  const position = q * (n - 1)
  const below = Math.floor(position)
  const above = Math.min(n - 1, below + 1)
  return sorted[below]! + (position - below) * (sorted[above]! - sorted[below]!)
}

/**
 * Mood's median test of two samples, as scipy.stats.median_test(a, b) with
 * its defaults (ties counted below, Yates' correction): whether they share a
 * median. p is 1 when every value is on one side of the grand median (no
 * evidence either way; SciPy refuses such samples).
 */
export function moodMedianTest(a: readonly number[], b: readonly number[]): MedianTestResult {
  const both = Float64Array.from([...a, ...b]).sort()
  const grandMedian = sortedMedian(both)
  const above = (sample: readonly number[]) => sample.filter((v) => v > grandMedian).length
  const table: MedianTestResult['table'] = [
    [above(a), above(b)],
    [a.length - above(a), b.length - above(b)],
  ]
  return { ...medianTableTest(table), grandMedian, table }
}

/**
 * The χ² test of a 2 x 2 table of counts above and at-or-below a median, with
 * Yates' correction: the part of Mood's test that counts alone decide (a
 * histogram gives the counts too).
 */
export function medianTableTest(table: MedianTestResult['table']): {
  statistic: number
  pValue: number
} {
  const rows = [table[0][0] + table[0][1], table[1][0] + table[1][1]]
  const columns = [table[0][0] + table[1][0], table[0][1] + table[1][1]]
  const total = rows[0]! + rows[1]!
  if (rows[0] === 0 || rows[1] === 0 || columns[0] === 0 || columns[1] === 0) {
    return { statistic: 0, pValue: 1 }
  }
  let statistic = 0
  for (let r = 0; r < 2; r++) {
    for (let c = 0; c < 2; c++) {
      const expected = (rows[r]! * columns[c]!) / total
      const observed = table[r]![c]!
      // Yates: each count moves half a unit towards its expectation, never past it.
      const gap = Math.max(0, Math.abs(observed - expected) - 0.5)
      statistic += (gap * gap) / expected
    }
  }
  return { statistic, pValue: chiSquare1Survival(statistic) }
}

export interface MannWhitneyResult {
  /** U of the first sample: how many (a, b) pairs have a > b, ties counting one half */
  u: number
  pValue: number
  /** 'exact' for small samples without ties, else the normal approximation */
  method: 'exact' | 'asymptotic'
}

/**
 * The two-sided Mann-Whitney U test, as scipy.stats.mannwhitneyu(a, b) with
 * its defaults: exact when both samples have fewer than 8 values and no value
 * is tied, else the normal approximation with the tie correction of the
 * variance and a continuity correction.
 */
export function mannWhitneyU(a: readonly number[], b: readonly number[]): MannWhitneyResult {
  const values = [...a.map((v) => [v, 0] as const), ...b.map((v) => [v, 1] as const)].sort(
    (x, y) => x[0] - y[0],
  )
  // One group per distinct value: how many of each sample hold it.
  const countsA: number[] = []
  const countsB: number[] = []
  for (let i = 0; i < values.length;) {
    let inA = 0
    let j = i
    for (; j < values.length && values[j]![0] === values[i]![0]; j++) inA += 1 - values[j]![1]
    countsA.push(inA)
    countsB.push(j - i - inA)
    i = j
  }
  return mannWhitneyGrouped(countsA, countsB)
}

/**
 * The same test on samples given as counts per value, values ascending
 * (countsA[i] of the first sample and countsB[i] of the second hold the i-th
 * smallest value): what a histogram gives, each bucket a group of ties.
 */
export function mannWhitneyGrouped(
  countsA: ArrayLike<number>,
  countsB: ArrayLike<number>,
): MannWhitneyResult {
  let n1 = 0
  let n2 = 0
  for (let i = 0; i < countsA.length; i++) {
    n1 += countsA[i]!
    n2 += countsB[i]!
  }
  if (n1 === 0 || n2 === 0) return { u: Number.NaN, pValue: Number.NaN, method: 'asymptotic' }
  // U from mid-ranks, and Σ(t³ - t) over the groups of ties.
  let rankSumA = 0
  let tieTerm = 0
  let before = 0
  for (let i = 0; i < countsA.length; i++) {
    const t = countsA[i]! + countsB[i]!
    if (t === 0) continue
    rankSumA += countsA[i]! * (before + (t + 1) / 2)
    tieTerm += t * t * t - t
    before += t
  }
  const u = rankSumA - (n1 * (n1 + 1)) / 2
  const big = Math.max(u, n1 * n2 - u)
  if ((n1 <= 8 || n2 <= 8) && tieTerm === 0) {
    return { u, pValue: Math.min(1, 2 * exactUpperTail(n1, n2, big)), method: 'exact' }
  }
  const n = n1 + n2
  const mean = (n1 * n2) / 2
  const sd = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))))
  if (sd === 0) return { u, pValue: 1, method: 'asymptotic' }
  const z = (big - mean - 0.5) / sd
  return { u, pValue: Math.min(1, 2 * normalSurvival(z)), method: 'asymptotic' }
}

/**
 * P(U >= u) under the null hypothesis. The counts of U over all orderings are
 * the coefficients of the Gaussian binomial [n1 + n2 choose n1] in q, built as
 * the product of (1 - q^(n2 + i)) / (1 - q^i) for i = 1..n1.
 */
function exactUpperTail(n1: number, n2: number, u: number): number {
  const [m, n] = n1 <= n2 ? [n1, n2] : [n2, n1]
  let ways = new Float64Array(m * n + 1)
  ways[0] = 1
  for (let i = 1; i <= m; i++) {
    const next = Float64Array.from(ways)
    for (let k = ways.length - 1; k >= n + i; k--) next[k]! -= ways[k - n - i]!
    for (let k = i; k < next.length; k++) next[k]! += next[k - i]!
    ways = next
  }
  let total = 0
  let tail = 0
  for (let k = 0; k < ways.length; k++) {
    total += ways[k]!
    if (k >= u) tail += ways[k]!
  }
  return tail / total
}

/** Holm's step-down adjusted p-values (family-wise error), in the order given. */
export function holm(pValues: readonly number[]): number[] {
  const order = pValues.map((p, i) => [p, i] as const).sort((x, y) => x[0] - y[0])
  const adjusted = new Array<number>(pValues.length)
  let running = 0
  order.forEach(([p, i], rank) => {
    running = Math.max(running, Math.min(1, (pValues.length - rank) * p))
    adjusted[i] = running
  })
  return adjusted
}

/** Benjamini-Hochberg adjusted p-values (false discovery rate), in the order given. */
export function benjaminiHochberg(pValues: readonly number[]): number[] {
  const m = pValues.length
  const order = pValues.map((p, i) => [p, i] as const).sort((x, y) => y[0] - x[0])
  const adjusted = new Array<number>(m)
  let running = 1
  order.forEach(([p, i], k) => {
    const rank = m - k
    running = Math.min(running, (p * m) / rank)
    adjusted[i] = running
  })
  return adjusted
}
