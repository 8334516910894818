/*
 * The shapes of a release comparison (compare/releases.ts). Types only: the
 * desktop app's renderer reads them without the code behind them.
 */

/** One side of a comparison: versions (names or tags), a time range [from, to), or both. */
export interface Side {
  versions?: readonly string[]
  from?: number
  to?: number
}

export interface CompareOptions {
  baseline: Side
  candidate: Side
  /** "METHOD route" of the endpoints to compare; default all */
  endpoints?: readonly string[]
  /** fewer requests on either side: "too few requests". Default 30 */
  minRequests?: number
  /** a median change smaller than this (%) is "no change", however sure. Default 5 */
  minChangePercent?: number
  /** ... or smaller than this (ms). Default 1 */
  minChangeMs?: number
  /** family-wise error rate over the endpoints (Holm). Default 0.05 */
  alpha?: number
  /** the test behind a verdict: Mood's median test (default) or the Mann-Whitney U test */
  test?: CompareTest
  /**
   * how many raw rows the comparison may scan for exact figures (an
   * endpoint's requests are read among the others of their hours); 0: from
   * the histograms only. Default 1,000,000 (about 50 ms on a year of 10
   * million requests, docs/benchmarks.md)
   */
  exactRows?: number
}

/**
 * Mood's median test asks whether the median moved (robust to a few slow
 * requests); Mann-Whitney asks whether one side's requests tend to be slower
 * (more power when the whole distribution shifts, and sees a change in the
 * tail that leaves the median alone).
 */
export type CompareTest = 'mood' | 'mann-whitney'

export type Verdict = 'slower' | 'faster' | 'no change' | 'too few requests'

export interface SideFigures {
  requests: number
  /** µs; null without requests */
  medianUs: number | null
  p95Us: number | null
  /** the 5th, 25th and 75th percentiles: with the median and p95, the distribution's shape */
  p5Us: number | null
  p25Us: number | null
  p75Us: number | null
  /** the extremes and the mean (exact in the rollups too) */
  minUs: number | null
  maxUs: number | null
  meanUs: number | null
  /** share of requests answered 5xx */
  errorRate: number | null
}

export interface EndpointComparison {
  method: string
  route: string
  baseline: SideFigures
  candidate: SideFigures
  /** candidate's median against baseline's, % and ms; null when a side has no request */
  medianChangePercent: number | null
  medianChangeMs: number | null
  p95ChangePercent: number | null
  /** the error rate's change in percentage points; null when a side has no request */
  errorRateChange: number | null
  /** the test's p, and its p after Holm's correction over the endpoints tested */
  pValue: number | null
  adjustedPValue: number | null
  verdict: Verdict
  /** the median change in ms times the candidate's requests: how much the change weighs */
  impact: number
  /**
   * true: computed from every request's own duration (all of them are still
   * stored raw); false: from the rollups' histograms (quantiles within 4.43%)
   */
  exact: boolean
}

export interface Comparison {
  baseline: Side & { versionNames: string[] }
  candidate: Side & { versionNames: string[] }
  test: CompareTest
  /** how the figures were computed */
  method: string
  endpoints: EndpointComparison[]
}
