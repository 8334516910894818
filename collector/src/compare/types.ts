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
}

export type Verdict = 'slower' | 'faster' | 'no change' | 'too few requests'

export interface SideFigures {
  requests: number
  /** µs; null without requests */
  medianUs: number | null
  p95Us: number | null
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
  /** Mood's median test, and its p after Holm's correction over the endpoints tested */
  pValue: number | null
  adjustedPValue: number | null
  verdict: Verdict
  /** the median change in ms times the candidate's requests: how much the change weighs */
  impact: number
}

export interface Comparison {
  baseline: Side & { versionNames: string[] }
  candidate: Side & { versionNames: string[] }
  /** how the figures were computed */
  method: string
  endpoints: EndpointComparison[]
}
