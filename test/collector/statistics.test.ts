/**
 * The comparison's statistics against an independent implementation: SciPy's
 * median_test and mannwhitneyu (Debian's python3-scipy, which .ci/run
 * installs) on the same samples; the corrections for many tests against
 * values worked out from their definitions.
 */
import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import {
  benjaminiHochberg,
  chiSquare1Survival,
  holm,
  mannWhitneyGrouped,
  mannWhitneyU,
  moodMedianTest,
  normalSurvival,
} from '../../collector/src/compare/statistics.js'

/** A seeded generator (mulberry32), so that both implementations see the same samples. */
function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Durations in ms, log-normal around `median`, rounded to `step` (coarse steps make ties). */
function durations(seed: number, n: number, median: number, step = 0.001): number[] {
  const next = random(seed)
  return Array.from({ length: n }, () => {
    const normal = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next())
    return Math.round((median * Math.exp(0.5 * normal)) / step) * step
  })
}

const CASES: Array<{ name: string; a: number[]; b: number[] }> = [
  { name: 'tiny, no ties (exact U)', a: [1.1, 2.3, 0.7, 5.2], b: [3.3, 4.4, 6.1, 7.9, 8.8] },
  {
    name: 'eight against many, no ties (exact U)',
    a: durations(1, 8, 10),
    b: durations(2, 300, 12),
  },
  { name: 'small with ties', a: [1, 2, 2, 3, 5, 5], b: [2, 3, 3, 4, 6, 6, 7] },
  { name: 'same distribution', a: durations(3, 400, 20), b: durations(4, 500, 20) },
  { name: '10% slower', a: durations(5, 2000, 20), b: durations(6, 2000, 22) },
  {
    name: '40% slower, coarse (many ties)',
    a: durations(7, 3000, 20, 1),
    b: durations(8, 2500, 28, 1),
  },
  { name: 'very different (tiny p)', a: durations(9, 5000, 20), b: durations(10, 5000, 40) },
  { name: 'one value each side of the median', a: [1, 1, 1, 1, 9], b: [9, 9, 9, 9, 1] },
]

/** SciPy's results on the same samples. */
function scipy(): Array<{ median: [number, number, number]; mwu: [number, number] }> {
  const program = `
import json, sys
from scipy.stats import median_test, mannwhitneyu
out = []
for case in json.load(sys.stdin):
    stat, p, med, _ = median_test(case['a'], case['b'])
    u = mannwhitneyu(case['a'], case['b'])
    out.append({'median': [float(stat), float(p), float(med)], 'mwu': [float(u.statistic), float(u.pvalue)]})
print(json.dumps(out))
`
  try {
    return JSON.parse(
      execFileSync('python3', ['-c', program], {
        input: JSON.stringify(CASES),
        encoding: 'utf8',
      }),
    ) as Array<{ median: [number, number, number]; mwu: [number, number] }>
  } catch (error) {
    throw new Error(
      `python3 with scipy is needed to check the statistics (apt-get install python3-scipy): ${(error as Error).message}`,
      { cause: error },
    )
  }
}

/** Equal to within a relative 1e-9 (or an absolute 1e-12 near 0). */
function close(actual: number, expected: number, what: string): void {
  expect(Math.abs(actual - expected), what).toBeLessThanOrEqual(
    Math.max(1e-12, 1e-9 * Math.abs(expected)),
  )
}

describe('statistics', () => {
  const reference = scipy()

  it.each(CASES.map((c, i) => [c.name, i] as const))(
    "%s: Mood's median test and Mann-Whitney U as SciPy computes them",
    (_name, i) => {
      const { a, b } = CASES[i]!
      const want = reference[i]!
      const median = moodMedianTest(a, b)
      close(median.grandMedian, want.median[2], 'grand median')
      close(median.statistic, want.median[0], 'median test statistic')
      close(median.pValue, want.median[1], 'median test p')
      const mwu = mannWhitneyU(a, b)
      close(mwu.u, want.mwu[0], 'U')
      close(mwu.pValue, want.mwu[1], 'Mann-Whitney p')
    },
  )

  it('Mann-Whitney U from counts per value (a histogram, each bucket a group of ties) as SciPy computes it on the values', () => {
    const i = CASES.findIndex((c) => c.name.includes('many ties'))
    const { a, b } = CASES[i]!
    const values = [...new Set([...a, ...b])].sort((x, y) => x - y)
    const count = (sample: number[]) => values.map((v) => sample.filter((x) => x === v).length)
    const grouped = mannWhitneyGrouped(count(a), count(b))
    close(grouped.u, reference[i]!.mwu[0], 'U')
    close(grouped.pValue, reference[i]!.mwu[1], 'Mann-Whitney p')
    expect(grouped.method).toBe('asymptotic')
  })

  it('the tails of the normal and χ² (1) distributions, against known values', () => {
    close(normalSurvival(0), 0.5, 'Φ(0)')
    close(normalSurvival(1.959963984540054), 0.025, 'z 1.96')
    close(normalSurvival(-1.959963984540054), 0.975, 'z -1.96')
    close(normalSurvival(10), 7.619853024160527e-24, 'z 10')
    close(chiSquare1Survival(3.841458820694124), 0.05, 'χ² 3.84')
    close(chiSquare1Survival(0.5), 0.4795001221869535, 'χ² 0.5')
  })

  it('Holm and Benjamini-Hochberg adjust p-values as their definitions say, in the order given', () => {
    const p = [0.04, 0.01, 0.05, 0.03, 0.02]
    // Holm: sorted 0.01 x 5, 0.02 x 4, 0.03 x 3, 0.04 x 2, 0.05 x 1, never decreasing.
    const holmed = holm(p)
    for (const [i, v] of [0.09, 0.05, 0.09, 0.09, 0.08].entries()) close(holmed[i]!, v, `holm ${i}`)
    // BH: p x 5 / rank, never increasing from the largest down: all 0.05 here.
    for (const v of benjaminiHochberg(p)) close(v, 0.05, 'bh')
    const bh = benjaminiHochberg([0.001, 0.2, 0.03, 0.9])
    for (const [i, v] of [0.004, 0.26666666666666666, 0.06, 0.9].entries())
      close(bh[i]!, v, `bh ${i}`)
    expect(holm([0.9, 0.8])).toEqual([1, 1])
  })
})
