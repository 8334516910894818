import { describe, expect, test } from 'vitest'
import {
  boxStats,
  dayKey,
  daysOfRange,
  DurationList,
  DurationSummary,
  hourOfDay,
  medianAndP95,
  QUANTILE_RELATIVE_ERROR,
  quantileSorted,
  startOfLocalDay,
} from '../../src-main/services/stats.js'
import { bucketOf, encodeHistogram } from 'routemeter/schema'
import { Random } from '../../src-main/services/generator/random.js'

/** The app's one seeded PRNG, as a function. */
const seededRandom = (seed: number): (() => number) => {
  const random = new Random(seed)
  return () => random.next()
}

describe('quantileSorted (R-7, linear interpolation)', () => {
  // Values R prints for quantile(x, p) with its default type 7.
  test.each([
    [[1, 2, 3, 4], 0.25, 1.75],
    [[1, 2, 3, 4], 0.5, 2.5],
    [[1, 2, 3, 4], 0.75, 3.25],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95, 9.55],
    [[10, 20, 30], 0.9, 28],
    [[42], 0.95, 42],
    [[3, 3, 3, 8], 0.5, 3],
    [[1, 100], 0, 1],
    [[1, 100], 1, 100],
  ])('quantile(%j, %d) = %d', (values, p, expected) => {
    expect(quantileSorted(values, p)).toBeCloseTo(expected, 10)
  })

  test('refuses no values and p outside 0..1', () => {
    expect(() => quantileSorted([], 0.5)).toThrow(RangeError)
    expect(() => quantileSorted([1], 1.5)).toThrow(RangeError)
    expect(() => quantileSorted([1], Number.NaN)).toThrow(RangeError)
  })

  test('matches a rank-based computation on random data', () => {
    const random = seededRandom(7)
    for (let round = 0; round < 50; round++) {
      const n = 1 + Math.floor(random() * 300)
      const values = Array.from({ length: n }, () => Math.round(Math.exp(random() * 10)))
      const sorted = [...values].sort((a, b) => a - b)
      for (const p of [0, 0.05, 0.25, 0.5, 0.75, 0.95, 1]) {
        // 1-based rank 1 + (n - 1) p, interpolated between its neighbours.
        const rank = 1 + (n - 1) * p
        const below = sorted[Math.floor(rank) - 1]!
        const above = sorted[Math.min(Math.ceil(rank), n) - 1]!
        const expected = below + (rank - Math.floor(rank)) * (above - below)
        expect(quantileSorted(Float64Array.from(sorted), p)).toBeCloseTo(expected, 6)
      }
    }
  })
})

describe('boxStats (Tukey whiskers)', () => {
  test('no values, no box', () => {
    expect(boxStats([])).toBeNull()
    expect(medianAndP95([])).toEqual({ medianUs: null, p95Us: null })
  })

  test('one value', () => {
    expect(boxStats([5])).toEqual({
      count: 1,
      min: 5,
      q1: 5,
      median: 5,
      q3: 5,
      max: 5,
      whiskerLow: 5,
      whiskerHigh: 5,
      mean: 5,
      p95: 5,
    })
  })

  test('whiskers stop at the last value within 1.5 IQR; outliers stay in min/max', () => {
    // q1 = 3, q3 = 5, IQR = 2: fences at 0 and 8.
    const values = [-10, 1, 2, 3, 3, 4, 4, 5, 5, 7, 9, 40]
    const sorted = Float64Array.from(values).sort()
    const box = boxStats(sorted)!
    expect(box.q1).toBeCloseTo(quantileSorted(sorted, 0.25))
    expect(box.q1).toBe(2.75)
    expect(box.q3).toBe(5.5)
    // fences: 2.75 - 4.125 = -1.375 and 5.5 + 4.125 = 9.625
    expect(box.whiskerLow).toBe(1)
    expect(box.whiskerHigh).toBe(9)
    expect(box.min).toBe(-10)
    expect(box.max).toBe(40)
    expect(box.mean).toBeCloseTo(values.reduce((a, b) => a + b) / values.length)
    expect(box.count).toBe(12)
  })

  test('matches a filter-based computation on random skewed data', () => {
    const random = seededRandom(11)
    for (let round = 0; round < 30; round++) {
      const values = Array.from({ length: 1 + Math.floor(random() * 500) }, () =>
        Math.round(1000 * Math.exp(2 * random() ** 3)),
      )
      const sorted = [...values].sort((a, b) => a - b)
      const box = boxStats(Float64Array.from(sorted))!
      const iqr = box.q3 - box.q1
      expect(box.whiskerLow).toBe(Math.min(...values.filter((v) => v >= box.q1 - 1.5 * iqr)))
      expect(box.whiskerHigh).toBe(Math.max(...values.filter((v) => v <= box.q3 + 1.5 * iqr)))
      expect(box.whiskerLow).toBeLessThanOrEqual(box.q1)
      expect(box.whiskerHigh).toBeGreaterThanOrEqual(box.q3)
    }
  })

  test('DurationList grows and sorts numerically', () => {
    const list = new DurationList()
    for (const value of [300, 20, 1000, 5, 20, 150, ...Array.from({ length: 200 }, (_, i) => i)]) {
      list.push(value)
    }
    const sorted = list.sorted()
    expect(sorted.length).toBe(206)
    expect([...sorted.subarray(0, 3)]).toEqual([0, 1, 2])
    expect(sorted[205]).toBe(1000)
  })
})

describe('local days and hours', () => {
  const t = Date.UTC(2026, 2, 31, 23, 30) // 2026-03-31 23:30 UTC

  test('day keys follow the offset, across month ends', () => {
    expect(dayKey(t, 0)).toBe('2026-03-31')
    expect(dayKey(t, 60)).toBe('2026-04-01')
    expect(dayKey(t, -600)).toBe('2026-03-31')
    expect(dayKey(Date.UTC(2026, 0, 1, 3), -240)).toBe('2025-12-31')
  })

  test('hour of day follows the offset, including half-hour zones', () => {
    expect(hourOfDay(t, 0)).toBe(23)
    expect(hourOfDay(t, 60)).toBe(0)
    expect(hourOfDay(t, 330)).toBe(5) // India, 05:00
    expect(hourOfDay(t, -300)).toBe(18)
  })

  test('start of the local day', () => {
    expect(startOfLocalDay(t, 60)).toBe(Date.UTC(2026, 2, 31, 23))
    expect(startOfLocalDay(t, 0)).toBe(Date.UTC(2026, 2, 31))
    expect(startOfLocalDay(t, -300)).toBe(Date.UTC(2026, 2, 31, 5))
  })

  test('days of a range: every touched day, `to` exclusive', () => {
    const from = Date.UTC(2026, 1, 27, 12)
    expect(daysOfRange(from, Date.UTC(2026, 2, 2), 0).days).toEqual([
      '2026-02-27',
      '2026-02-28',
      '2026-03-01',
    ])
    expect(daysOfRange(from, Date.UTC(2026, 2, 2) + 1, 0).days).toHaveLength(4)
    expect(daysOfRange(from, from + 1, 0).days).toEqual(['2026-02-27'])
    expect(daysOfRange(from, from, 0).days).toEqual([])
    expect(daysOfRange(from, Date.UTC(2026, 1, 28), 720).days).toEqual(['2026-02-28'])
  })
})

describe('DurationSummary (quantiles from a histogram)', () => {
  function sample(seed: number, n: number, spread: number): number[] {
    const random = seededRandom(seed)
    return Array.from({ length: n }, () => {
      const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
      return Math.round(30_000 * Math.exp(spread * normal))
    })
  }

  test.each([
    [1, 2, 0.3],
    [2, 7, 1.5],
    [3, 1000, 0.4],
    [4, 20_000, 1.2],
    [5, 5000, 0.01],
  ])(
    'seed %i, %i durations, spread %f: exact counts and extremes, quantiles within the bound',
    (seed, n, spread) => {
      const values = sample(seed, n, spread)
      const summary = new DurationSummary()
      for (const value of values) summary.addRequest(value, value % 7 === 0 ? 503 : 200)
      const sorted = Float64Array.from(values).sort()
      const exact = boxStats(sorted)!
      const box = summary.box()!
      expect(box.count).toBe(n)
      expect(box.min).toBe(exact.min)
      expect(box.max).toBe(exact.max)
      expect(box.mean).toBeCloseTo(exact.mean, 6)
      expect(summary.errors5xx).toBe(values.filter((v) => v % 7 === 0).length)
      for (const p of [0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1]) {
        const truth = quantileSorted(sorted, p)
        expect(Math.abs(summary.quantile(p) - truth), `p${p}`).toBeLessThanOrEqual(
          QUANTILE_RELATIVE_ERROR * truth + 1,
        )
      }
      expect(box.whiskerLow).toBeGreaterThanOrEqual(box.min)
      expect(box.whiskerLow).toBeLessThanOrEqual(box.q1)
      expect(box.whiskerHigh).toBeLessThanOrEqual(box.max)
      expect(box.whiskerHigh).toBeGreaterThanOrEqual(box.q3)
    },
  )

  test('rollup rows and single requests add up to the same summary', () => {
    const values = sample(9, 3000, 0.8)
    const direct = new DurationSummary()
    for (const value of values) direct.addRequest(value, 200)
    const rolled = new DurationSummary()
    const first = values.slice(0, 2000)
    const histogram = new Map<number, number>()
    for (const value of first)
      histogram.set(bucketOf(value), (histogram.get(bucketOf(value)) ?? 0) + 1)
    rolled.addRollup(
      first.length,
      0,
      0,
      first.reduce((a, b) => a + b, 0),
      Math.min(...first),
      Math.max(...first),
      encodeHistogram(histogram),
    )
    const rest = new DurationSummary()
    for (const value of values.slice(2000)) rest.addRequest(value, 200)
    rolled.add(rest)
    expect(rolled.box()).toEqual(direct.box())
    expect(new DurationSummary().box()).toBeNull()
    expect(new DurationSummary().medianAndP95()).toEqual({ medianUs: null, p95Us: null })
  })

  test('whiskers of a rollup with millions of requests a bucket: those of the same shape with few', () => {
    // A year at 1,000 requests a second puts millions in a bucket: the whiskers are found
    // per bucket, not by walking its counts, and are where the small histogram puts them.
    const values = [...sample(11, 4000, 0.6), 2_000_000, 3_000_000]
    const small = new Map<number, number>()
    for (const value of values) small.set(bucketOf(value), (small.get(bucketOf(value)) ?? 0) + 1)
    const scale = 1_000_000
    const large = new Map([...small].map(([bucket, n]) => [bucket, n * scale]))
    const sum = values.reduce((a, b) => a + b, 0)
    const of = (histogram: Map<number, number>, k: number) => {
      const summary = new DurationSummary()
      summary.addRollup(
        values.length * k,
        0,
        0,
        sum * k,
        Math.min(...values),
        Math.max(...values),
        encodeHistogram(histogram),
      )
      return summary.box()!
    }
    const few = of(small, 1)
    const many = of(large, scale)
    for (const key of ['whiskerLow', 'whiskerHigh', 'q1', 'median', 'q3'] as const) {
      expect(Math.abs(many[key] - few[key]), key).toBeLessThanOrEqual(
        QUANTILE_RELATIVE_ERROR * few[key] + 1,
      )
    }
    // Outliers stay outside the whiskers, inside min and max.
    expect(many.whiskerHigh).toBeLessThan(2_000_000)
    expect(many.whiskerLow).toBeGreaterThanOrEqual(many.min)
  })
})
