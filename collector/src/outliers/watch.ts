/*
 * Level 2: watches the requests in flight while some endpoint is at level 2
 * or 3. One periodic sweep (every sweepInterval, 50 ms; not a timer per request) looks at the oldest
 * requests; one that has run past its endpoint's threshold has its context
 * taken there and then, while it still runs, and completed when it ends. A
 * request that ends past its threshold before a sweep saw it (a blocked
 * event loop lets no sweep run) is caught when it ends.
 */
import type { IncomingMessage } from 'node:http'
import { memoryUsage } from 'node:process'
import { performance } from 'node:perf_hooks'
import type {
  MonitorLevel,
  OutlierCause,
  OutlierContext,
  OutlierOperation,
  OutlierProcessState,
} from '../schema/types.js'
import { OperationTracker, type OperationOwner } from './operations.js'
import type { ResolvedOutliers } from './options.js'
import { ProcessSampler } from './process-state.js'
import { paramStrings, redactedHeaders, redactedUrl } from './redact.js'
import { RecentDurations } from './threshold.js'
import type { FoldedProfile } from '../profiles/types.js'
import type { ProfiledRequest } from '../profiles/sampler.js'

/** Outliers waiting for the sweep that completes them, at most (the rest are not kept). */
const MAX_ENDING = 1000
/**
 * Requests in flight looked at for "this endpoint's", at most, the oldest
 * first: counting resolves each one's route, and a capture must stay cheap.
 */
const MAX_COUNTED = 1000

/** What the watch keeps per endpoint (the collector's endpoint carries it). */
export interface WatchedEndpoint {
  readonly slot: number
  level: MonitorLevel
  durations: RecentDurations | undefined
  /** the minute (since the epoch) outliersThisMinute counts */
  outlierMinute: number
  outliersThisMinute: number
}

/** A request in flight as the watch sees it (the collector's per-request state). */
export interface WatchedRequest extends OperationOwner, ProfiledRequest {
  readonly req: IncomingMessage
  readonly ctx: unknown
  /** performance.now() at its start */
  readonly start: number
  readonly method: string
  prev: WatchedRequest | undefined
  next: WatchedRequest | undefined
  capture: Capture | undefined
}

/** The context taken when a request passed its threshold. */
export interface Capture {
  thresholdUs: number
  /** performance.now() when taken */
  at: number
  url: string
  headers: Record<string, string | string[]>
  params: Record<string, string>
  bodyBytes: number | null
  process: OutlierProcessState
}

/** One outlier, complete, as the collector hands it to the writer. */
export interface OutlierRecord {
  slot: number
  /** ms since the epoch at the request's start */
  time: number
  durationUs: number
  thresholdUs: number
  caughtUs: number
  status: number
  group: string | null
  ip: string | null
  method: string
  url: string
  cause: OutlierCause
  causeDetail: string
  /** OutlierContext as JSON */
  context: string
  /** its own CPU samples (an endpoint at level 3); undefined: none */
  profile?: FoldedProfile
}

/** What the watch needs of the collector. */
export interface WatchHost {
  /** the endpoint a request in flight is routed to so far; undefined before routing */
  endpointOf(request: WatchedRequest): WatchedEndpoint | undefined
  /** the route's parameters as the framework holds them */
  paramsOf(request: WatchedRequest): unknown
  /** the endpoints at level 2 or 3 */
  watchedEndpoints(): Iterable<WatchedEndpoint>
  /** a complete outlier, for the next batch */
  outlier(record: OutlierRecord): void
  /** attributes the CPU samples taken so far (level 3), before outliers take theirs */
  settleProfiles(): void
  report(error: unknown, kind: string): void
}

/** An outlier whose request has ended, completed at the next sweep. */
interface Ending {
  request: WatchedRequest
  capture: Capture
  slot: number
  time: number
  durationUs: number
  end: number
  status: number
  group: string | null
  ip: string | null
}

export class OutlierWatch {
  private head: WatchedRequest | undefined
  private tail: WatchedRequest | undefined
  private inFlight = 0
  private ending: Ending[] = []
  private timer: NodeJS.Timeout | undefined
  private readonly sampler = new ProcessSampler()
  readonly operations: OperationTracker

  constructor(
    private readonly options: ResolvedOutliers,
    private readonly host: WatchHost,
  ) {
    this.operations = new OperationTracker(options.redact, (error) =>
      host.report(error, 'outliers'),
    )
  }

  /** Whether requests are watched (some endpoint is at level 2 or 3). */
  get active(): boolean {
    return this.timer !== undefined
  }

  /** whether some endpoint is at level 3 (its CPU samples need the requests' context) */
  private profiling = false

  /**
   * Whether requests run in an async context that ties operations to them
   * (watching, and `operations`) or CPU samples (level 3).
   */
  get attributing(): boolean {
    return this.timer !== undefined && (this.options.operations || this.profiling)
  }

  /** The requests' async context: the request whose code runs. */
  get context(): OperationTracker['context'] {
    return this.operations.context
  }

  /** Starts or stops watching; `profiling`: some endpoint is at level 3. */
  setActive(active: boolean, profiling = false): void {
    this.profiling = active && profiling
    if (active === this.active) return
    if (active) {
      this.sampler.start(performance.now())
      if (this.options.operations) this.operations.start(this.options.channels)
      this.timer = setInterval(() => this.sweepSafely(), this.options.sweepIntervalMs).unref()
      return
    }
    clearInterval(this.timer)
    this.timer = undefined
    this.operations.stop()
    this.sampler.stop()
    for (let r = this.head; r !== undefined; r = r.next) r.watched = false
    this.head = this.tail = undefined
    this.inFlight = 0
    this.ending = []
  }

  /** Runs `work` in the request's async context, so that its operations are its own. */
  run<R>(request: WatchedRequest, work: () => R): R {
    return this.operations.context.run(request, work)
  }

  /** Enters the request's async context for the rest of the current execution. */
  enterContext(request: WatchedRequest): void {
    this.operations.context.enterWith(request)
  }

  /** A request starts: it goes to the end of the in-flight list (the oldest stay first). */
  enter(request: WatchedRequest): void {
    request.watched = true
    request.prev = this.tail
    if (this.tail === undefined) this.head = request
    else this.tail.next = request
    this.tail = request
    this.inFlight++
  }

  /** A request ends: it leaves the in-flight list. */
  leave(request: WatchedRequest): void {
    request.watched = false
    const { prev, next } = request
    if (prev === undefined) this.head = next
    else prev.next = next
    if (next === undefined) this.tail = prev
    else next.prev = prev
    request.prev = request.next = undefined
    this.inFlight--
  }

  /**
   * A request of an endpoint at level 2 or 3 ended. Its duration joins the
   * endpoint's recent ones; if it ran past the threshold, its outlier is
   * completed at the next sweep (which knows whether the loop was blocked).
   * Returns whether it is an outlier (its raw row is then never sampled away).
   */
  finished(
    request: WatchedRequest,
    endpoint: WatchedEndpoint,
    time: number,
    durationUs: number,
    status: number,
    group: string | null,
    ip: string | null,
  ): boolean {
    const durations = (endpoint.durations ??= new RecentDurations(
      this.options.factor,
      this.options.minDurationUs,
    ))
    const thresholdUs = durations.thresholdUs
    durations.add(durationUs)
    let capture = request.capture
    if (capture === undefined) {
      if (!(durationUs > thresholdUs) || !this.active || !this.allowed(endpoint)) return false
      capture = this.take(request, endpoint, thresholdUs, request.start + durationUs / 1000, true)
    }
    if (this.ending.length >= MAX_ENDING) return true
    this.ending.push({
      request,
      capture,
      slot: endpoint.slot,
      time,
      durationUs,
      end: request.start + durationUs / 1000,
      status,
      group,
      ip,
    })
    return true
  }

  private sweepSafely(): void {
    try {
      this.sweep(performance.now())
    } catch (error) {
      this.host.report(error, 'outliers')
    }
  }

  private sweep(now: number): void {
    this.sampler.tick(now, this.options.sweepIntervalMs)
    const ending = this.ending
    this.ending = []
    // Level 3's outliers take their own samples: those taken so far are attributed first.
    if (ending.some((outlier) => this.host.endpointOf(outlier.request)?.level === 3)) {
      this.host.settleProfiles()
    }
    for (const outlier of ending) this.host.outlier(this.complete(outlier))
    for (const endpoint of this.host.watchedEndpoints()) endpoint.durations?.refresh(now)
    const floorMs = this.options.minDurationUs / 1000
    for (let request = this.head; request !== undefined; request = request.next) {
      // Oldest first: once one is younger than the floor, all the rest are.
      if (now - request.start < floorMs) break
      if (request.capture !== undefined) continue
      const endpoint = this.host.endpointOf(request)
      const thresholdUs = endpoint?.durations?.thresholdUs
      if (endpoint === undefined || endpoint.level < 2 || thresholdUs === undefined) continue
      if ((now - request.start) * 1000 > thresholdUs && this.allowed(endpoint)) {
        this.take(request, endpoint, thresholdUs, now)
      }
    }
  }

  /** Whether the endpoint may have one more outlier this minute (and counts it). */
  private allowed(endpoint: WatchedEndpoint): boolean {
    const minute = Math.floor(Date.now() / 60_000)
    if (endpoint.outlierMinute !== minute) {
      endpoint.outlierMinute = minute
      endpoint.outliersThisMinute = 0
    }
    if (endpoint.outliersThisMinute >= this.options.maxPerMinute) return false
    endpoint.outliersThisMinute++
    return true
  }

  /** Takes a request's context now (`at`, performance.now()). */
  private take(
    request: WatchedRequest,
    endpoint: WatchedEndpoint,
    thresholdUs: number,
    at: number,
    /** the request has ended: it has left the in-flight list, and counts in it still */
    ended = false,
  ): Capture {
    const { req } = request
    const memory = memoryUsage()
    const length = Number(req.headers['content-length'])
    const capture: Capture = {
      thresholdUs,
      at,
      url: redactedUrl(req.url ?? '/', this.options.redact),
      headers: redactedHeaders(req, this.options.redact),
      params: paramStrings(this.host.paramsOf(request)),
      bodyBytes: Number.isSafeInteger(length) && length >= 0 ? length : null,
      process: {
        ...this.sampler.loop(at),
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        heapTotalBytes: memory.heapTotal,
        externalBytes: memory.external,
        inFlight: this.inFlight + (ended ? 1 : 0),
        inFlightEndpoint: this.countInFlight(endpoint) + (ended ? 1 : 0),
      },
    }
    request.capture = capture
    return capture
  }

  private countInFlight(endpoint: WatchedEndpoint): number {
    let count = 0
    let seen = 0
    for (let r = this.head; r !== undefined && seen < MAX_COUNTED; r = r.next, seen++) {
      if (this.host.endpointOf(r) === endpoint) count++
    }
    return count
  }

  /** The outlier's row: its operations against its time line, the blocked loop, the cause. */
  private complete(outlier: Ending): OutlierRecord {
    const { request, capture, durationUs } = outlier
    const start = request.start
    const durationMs = durationUs / 1000
    const operations: OutlierOperation[] = (request.operations ?? []).map((op) => ({
      kind: op.kind,
      target: op.target,
      startMs: round(op.start - start),
      durationMs: op.end < 0 ? null : round(op.end - op.start),
      openAtCatch: op.start <= capture.at && (op.end < 0 || op.end > capture.at),
      ...(op.error === undefined ? {} : { error: op.error }),
    }))
    const loopBlockedMs = this.sampler.blockedDuring(start, outlier.end)
    const { cause, detail } = causeOf(operations, loopBlockedMs, durationMs)
    const context: OutlierContext = {
      headers: capture.headers,
      params: capture.params,
      bodyBytes: capture.bodyBytes,
      operations,
      operationsDropped: request.operationsDropped,
      process: capture.process,
      loopBlockedMs,
    }
    return {
      slot: outlier.slot,
      time: outlier.time,
      durationUs,
      thresholdUs: capture.thresholdUs,
      caughtUs: Math.min(durationUs, Math.round((capture.at - start) * 1000)),
      status: outlier.status,
      group: outlier.group,
      ip: outlier.ip,
      method: request.method,
      url: capture.url,
      cause,
      causeDetail: detail,
      context: JSON.stringify(context),
      ...(request.profile === undefined || request.profile.empty
        ? {}
        : { profile: request.profile.build() }),
    }
  }
}

/**
 * What made the request slow. The event loop, if it was blocked for half of
 * the request; else the operation that took most of the request's time, if
 * it was open when the request was caught or took half of its time; else a
 * wait the collector does not see (a timer, a client without a channel).
 */
export function causeOf(
  operations: readonly OutlierOperation[],
  loopBlockedMs: number,
  durationMs: number,
): { cause: OutlierCause; detail: string } {
  if (loopBlockedMs >= durationMs / 2) {
    return { cause: 'event-loop', detail: `event loop blocked for ${loopBlockedMs} ms` }
  }
  // Among the operations open when the request was caught, if any: the one that took longest.
  const open = operations.filter((op) => op.openAtCatch)
  let longest: OutlierOperation | undefined
  let longestMs = -1
  for (const op of open.length > 0 ? open : operations) {
    const end = op.durationMs === null ? durationMs : op.startMs + op.durationMs
    const ms = Math.min(durationMs, end) - Math.max(0, op.startMs)
    if (ms > longestMs) {
      longest = op
      longestMs = ms
    }
  }
  if (longest !== undefined && (longest.openAtCatch || longestMs >= durationMs / 2)) {
    const took =
      longest.durationMs === null ? 'still open at the end' : `${Math.round(longest.durationMs)} ms`
    return { cause: 'operation', detail: `${longest.kind} ${longest.target} (${took})` }
  }
  if (loopBlockedMs >= durationMs / 4) {
    return { cause: 'event-loop', detail: `event loop blocked for ${loopBlockedMs} ms` }
  }
  return {
    cause: 'wait',
    detail:
      'waiting on no operation Routemeter sees (a timer, or a client without a tracing channel)',
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10
}
