/* One module: the per-request path (track, finish) and the state it shares with the handle; the hot path is read in one place. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { ResolvedOptions } from './options.js'
import type { MonitorLevel } from '../schema/types.js'
import { UNMATCHED_ROUTE } from '../schema/types.js'
import { detectVersion, type AppVersion } from './version.js'
import {
  RowBatch,
  type Batch,
  type EndpointDefinition,
  type EndpointLevel,
} from '../writer/batch.js'
import { WriterLink } from '../writer/app-link.js'
import {
  OutlierWatch,
  type Capture,
  type OutlierRecord,
  type WatchedEndpoint,
  type WatchedRequest,
} from '../outliers/watch.js'
import type { OpenOperation } from '../outliers/operations.js'
import { ProfileSampler } from '../profiles/sampler.js'
import { ROW_ABORTED, ROW_OUTLIER } from '../retention/sampler.js'

/** What an adapter tells the core about its framework. */
export interface FrameworkHooks<Ctx = unknown> {
  /** Route template of a finished request; undefined when no route matched. */
  routeOf(
    req: IncomingMessage,
    ctx: Ctx | undefined,
  ): string | RegExp | readonly unknown[] | undefined
  /** The client's IP when the user gave no `getIp`. */
  ipOf(req: IncomingMessage, ctx: Ctx | undefined): string | null | undefined
  /** What `groupBy` and `getIp` receive: Express's req, Koa's ctx. */
  subject(req: IncomingMessage, ctx: Ctx | undefined): unknown
  /** The matched route's parameters (an outlier keeps them); none where the framework has none. */
  paramsOf?(req: IncomingMessage, ctx: Ctx | undefined): unknown
}

const kUnmatched = Symbol('routemeter.unmatched')
type UnmatchedMark = IncomingMessage & { [kUnmatched]?: boolean }

/**
 * Marks a request as answered by a framework's not-found handler that is a
 * route of its own (NestJS's catch-all under a global prefix): it is recorded
 * with the unmatched requests, as a 404 of any other app.
 */
export function markUnmatched(req: IncomingMessage): void {
  ;(req as UnmatchedMark)[kUnmatched] = true
}

/** A route an app has registered, for the endpoint table. */
export interface DiscoveredRoute {
  method: string
  route: string | RegExp | readonly unknown[]
}

export interface CollectorStats {
  /** requests written to the file */
  written: number
  /** requests waiting to be written */
  pending: number
  /** requests dropped because the buffer was full while the file could not be written */
  dropped: number
  /** errors reported through onError or as warnings */
  errors: number
  /** whether the file is written by a thread of its own (false: on the app's thread) */
  writerThread: boolean
  /** whether V8's CPU profiler runs (some endpoint is at level 3) */
  profiling: boolean
}

/** The handle `bind` returns. */
export interface RoutemeterHandle {
  /** Writes what is buffered now; false if the file could not be written. */
  flush(): boolean
  /** Writes what is buffered and stops collecting. */
  close(): void
  stats(): CollectorStats
  readonly database: string
  readonly version: AppVersion
  /** the machine this process runs on, as written with every request */
  readonly node: string
}

/** What the collector knows of an endpoint; `slot` is its number in the batches. */
interface Endpoint extends WatchedEndpoint {
  slot: number
  method: string
  route: string
  level: MonitorLevel
  /** ms since the epoch of the latest request not yet handed to the writer; 0: none */
  lastRequested: number
}

const kTracked = Symbol('routemeter.tracked')

/*
 * Express 5 swaps the prototype of every request and response, which gives
 * each one a hidden class (map) of its own: a named load such as
 * `res.statusCode` then misses V8's inline caches on every request and the
 * lookup runs in V8's runtime, costlier than all the rest of the request's work.
 * A load whose key is held in a variable takes V8's generic keyed lookup,
 * which finds a data property without leaving compiled code (a getter still
 * goes to the runtime). So the per-request code reads the framework's objects
 * through these keys, and reads the fields that Node's `headersSent` and
 * `writableFinished` getters read rather than the getters.
 */
export const FIELD_KEY = {
  method: 'method',
  statusCode: 'statusCode',
  header: '_header',
  finished: 'finished',
  outputSize: 'outputSize',
  socket: 'socket',
  route: 'route',
} as const

type Fields = Record<string, unknown>

/** `res.headersSent` (Node: `!!this._header`); the getter where the field is not there. */
export function headersSent(res: ServerResponse): boolean {
  const header = (res as unknown as Fields)[FIELD_KEY.header]
  return header === undefined ? res.headersSent : Boolean(header)
}

/** `res.writableFinished`, from the fields Node's getter reads; the getter where they are not there. */
export function writableFinished(res: ServerResponse): boolean {
  const fields = res as unknown as Fields
  const finished = fields[FIELD_KEY.finished]
  const outputSize = fields[FIELD_KEY.outputSize]
  if (typeof finished !== 'boolean' || typeof outputSize !== 'number') return res.writableFinished
  const socket = fields[FIELD_KEY.socket] as { writableLength: number } | null | undefined
  return (
    finished &&
    outputSize === 0 &&
    (socket === null || socket === undefined || socket.writableLength === 0)
  )
}

/** Per-request state, hung on the response under a Symbol; the outlier watch's fields stay unset below level 2. */
class Tracked implements WatchedRequest {
  watched = false
  prev: WatchedRequest | undefined = undefined
  next: WatchedRequest | undefined = undefined
  capture: Capture | undefined = undefined
  operations: OpenOperation[] | undefined = undefined
  operationsDropped = 0

  constructor(
    readonly collector: Collector,
    readonly req: IncomingMessage,
    readonly ctx: unknown,
    readonly start: number,
    readonly socketIp: string | undefined,
    readonly method: string,
  ) {}
}

type TrackedResponse = ServerResponse & { [kTracked]?: Tracked }

// One shared listener (no closure per request): `this` is the response.
function onResponseClose(this: TrackedResponse): void {
  const tracked = this[kTracked]
  if (tracked === undefined) return
  // An event listener's exception would be the app's uncaught exception.
  try {
    tracked.collector.finish(tracked, this)
  } catch (error) {
    tracked.collector.report(error, 'request')
  }
}

/** Complete outliers held for the writer, at most (maxPerMinute bounds them long before). */
const MAX_HELD_OUTLIERS = 10_000

/** Longest user or IP name kept, in UTF-16 units: a header or a groupBy value can be any size. */
const MAX_CLIENT_NAME_LENGTH = 200

/** A user's or IP's name as stored: a string of at most MAX_CLIENT_NAME_LENGTH. */
function clientName(value: unknown): string {
  const name = String(value)
  return name.length > MAX_CLIENT_NAME_LENGTH ? name.slice(0, MAX_CLIENT_NAME_LENGTH) : name
}

/** Turns a route as frameworks keep it (string, RegExp, array) into the endpoint's route. */
export function routeToString(route: string | RegExp | readonly unknown[]): string {
  if (typeof route === 'string') return route
  if (route instanceof RegExp) return String(route)
  return `[${route.map((part) => routeToString(part as string | RegExp)).join(',')}]`
}

/** Every open collector, flushed when the process exits. */
const openCollectors = new Set<Collector>()
let exitHooksInstalled = false

function flushAllSync(): void {
  for (const collector of openCollectors) collector.flushFinal()
}

/**
 * When the process ends: writes and closes every collector, so that the last
 * connection to a file checkpoints it and takes its -wal and -shm away.
 */
function closeAllSync(): void {
  for (const collector of [...openCollectors]) {
    try {
      collector.close()
    } catch {
      // the process is ending: nothing may be thrown from here
    }
  }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return
  exitHooksInstalled = true
  // At 'exit' only synchronous code runs: close() blocks until the writer thread has written.
  process.on('exit', closeAllSync)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      // Only we listen: do what Node would have done without us, end the process.
      if (process.listenerCount(signal) === 1) {
        closeAllSync()
        process.removeListener(signal, onSignal)
        process.kill(process.pid, signal)
        return
      }
      // The app handles the signal (a graceful shutdown): its last requests are still recorded.
      flushAllSync()
    }
    process.on(signal, onSignal)
  }
}

/** Internal choices, for tests: `thread: false` writes on the app's thread. */
export interface CollectorInternals {
  thread?: boolean
}

/**
 * The framework-agnostic collector. Per request it reads a clock, listens
 * once for the response's `close`, and appends one row to a columnar batch;
 * every flushInterval the batch goes to the writer thread, which writes it
 * into the metrics file in one transaction.
 */
export class Collector<Ctx = unknown> implements RoutemeterHandle {
  readonly database: string
  readonly version: AppVersion
  readonly node: string
  private readonly options: ResolvedOptions
  private readonly hooks: FrameworkHooks<Ctx>
  /** endpoints by method, then route */
  private readonly endpoints = new Map<string, Map<string, Endpoint>>()
  /** endpoints by slot */
  private readonly slots: Endpoint[] = []
  /** slots the writer knows (defined in a batch already) */
  private defined = 0
  private batch = new RowBatch()
  private touched: Endpoint[] = []
  private discovered: number[] = []
  /** rows the writer held at the last look: with the batch's, what counts against maxBufferedRows */
  private outstanding = 0
  private readonly writer: WriterLink
  private readonly reportedKinds = new Set<string>()
  /** the writer's count of good writes when an error was last reported */
  private goodWritesSeen = 0
  private readonly counters = { dropped: 0, errors: 0 }
  /** whether passing maxEndpoints was reported */
  private endpointLimitReported = false
  /** dropped count already reported, so each new loss is reported once */
  private reportedDropped = 0
  private readonly flushTimer: NodeJS.Timeout
  private closed = false
  /** level 2: the requests in flight, their outgoing operations, the outliers */
  private readonly watch: OutlierWatch
  /** endpoints at level 2 or 3 */
  private watched: Endpoint[] = []
  /** complete outliers, for the next batch */
  private outliers: OutlierRecord[] = []
  /** level 3: the CPU profiler and the samples it gave each endpoint */
  private readonly profiler: ProfileSampler

  constructor(
    options: ResolvedOptions,
    hooks: FrameworkHooks<Ctx>,
    internals: CollectorInternals = {},
  ) {
    this.options = options
    this.hooks = hooks
    this.database = options.database
    this.version = detectVersion(options)
    this.node = options.node
    this.watch = new OutlierWatch(options.outliers, {
      endpointOf: (request) => this.routedEndpoint(request as Tracked),
      paramsOf: (request) => this.hooks.paramsOf?.(request.req, request.ctx as Ctx | undefined),
      watchedEndpoints: () => this.watched,
      outlier: (record) => {
        if (this.outliers.length < MAX_HELD_OUTLIERS) this.outliers.push(record)
      },
      settleProfiles: () => {
        if (this.profiler.running) this.safely('profiles', () => this.profiler.attributeNow())
      },
      report: (error, kind) => this.report(error, kind),
    })
    this.profiler = new ProfileSampler(options.profiles.intervalUs, this.watch.context, {
      slotOf: (request) => {
        const endpoint = this.routedEndpoint(request as Tracked)
        return endpoint?.level === 3 ? endpoint.slot : undefined
      },
      report: (error, kind) => this.report(error, kind),
    })
    this.writer = new WriterLink(
      {
        database: options.database,
        version: { name: this.version.name, source: this.version.source, tags: this.version.tags },
        node: options.node,
        maxNewClients: options.maxNewClients,
        retention: options.retention,
        flushInterval: options.flushInterval,
        levelPollInterval: options.levelPollInterval,
        thread: internals.thread ?? true,
      },
      {
        error: (error, kind) => this.report(error, kind),
        levels: (levels) => this.applyLevels(levels),
        restarted: (lost) => {
          this.counters.dropped += lost
          this.defined = 0
        },
      },
    )
    this.updateWatch()
    this.flushTimer = setInterval(
      () => this.safely('flush', () => this.handOver()),
      options.flushInterval,
    ).unref()
    openCollectors.add(this)
    if (options.flushOnExit) installExitHooks()
  }

  /** Whether the writer runs in a thread of its own (false: on the app's thread). */
  get threaded(): boolean {
    return this.writer.threaded
  }

  /** Hot path: called when a request starts. */
  track(req: IncomingMessage, res: ServerResponse, ctx?: Ctx): void {
    const response = res as TrackedResponse
    if (this.closed || response[kTracked] !== undefined) return
    if (this.options.ignore !== undefined && this.isIgnored(req)) return
    // The socket's address is read now: once an aborted socket is destroyed it is gone.
    const socketIp = this.options.getIp === undefined ? req.socket?.remoteAddress : undefined
    const method = ((req as unknown as Fields)[FIELD_KEY.method] as string | undefined) ?? 'GET'
    const tracked = new Tracked(this, req, ctx, performance.now(), socketIp, method)
    response[kTracked] = tracked
    response.on('close', onResponseClose)
    if (this.watch.active) this.watch.enter(tracked)
  }

  /**
   * Whether requests run in an async context that ties outgoing operations to
   * them (some endpoint at level 2 or 3, outliers.operations on): adapters then
   * run a request's handling through inRequestContext.
   */
  get attributing(): boolean {
    return this.watch.attributing
  }

  /**
   * Runs the framework's handling of a tracked request in the request's async
   * context, so that the outgoing operations it starts are attributed to it.
   */
  inRequestContext<R>(res: ServerResponse, work: () => R): R {
    const tracked = (res as TrackedResponse)[kTracked]
    if (tracked === undefined || !tracked.watched) return work()
    if (!this.profiler.running) return this.watch.run(tracked, work)
    // Level 3: the code run here is the request's; after it, its caller's again.
    const caller = this.watch.context.getStore()
    this.profiler.mark(tracked)
    try {
      return this.watch.run(tracked, work)
    } finally {
      this.profiler.mark(caller)
    }
  }

  /** Enters the request's async context for the rest of the caller's execution (createCollector's track). */
  enterRequestContext(res: ServerResponse): void {
    const tracked = (res as TrackedResponse)[kTracked]
    if (tracked !== undefined && tracked.watched) {
      this.watch.enterContext(tracked)
      this.profiler.mark(tracked)
    }
  }

  /** The endpoint a request in flight is routed to so far (existing endpoints only). */
  private routedEndpoint(tracked: Tracked): Endpoint | undefined {
    const matched = this.routeOf(tracked.req, tracked.ctx as Ctx | undefined)
    if (matched === undefined) return undefined
    return this.endpoints.get(tracked.method)?.get(routeToString(matched))
  }

  /** The framework's route of a request; none when a not-found handler answered it. */
  private routeOf(
    req: IncomingMessage,
    ctx: Ctx | undefined,
  ): ReturnType<FrameworkHooks['routeOf']> {
    return (req as UnmatchedMark)[kUnmatched] === true ? undefined : this.hooks.routeOf(req, ctx)
  }

  /** The user's `ignore`; if it throws, the request is reported and recorded. */
  private isIgnored(req: IncomingMessage): boolean {
    try {
      return this.options.ignore!(req)
    } catch (error) {
      this.report(error, 'ignore')
      return false
    }
  }

  /** Called once per tracked request, when its response is closed. */
  finish(tracked: Tracked, res: ServerResponse): void {
    const durationUs = Math.round((performance.now() - tracked.start) * 1000)
    if (tracked.watched) this.watch.leave(tracked)
    const time = Math.round(performance.timeOrigin + tracked.start)
    const ctx = tracked.ctx as Ctx | undefined
    const req = tracked.req
    let route: string
    try {
      const matched = this.routeOf(req, ctx)
      route = matched === undefined ? UNMATCHED_ROUTE : routeToString(matched)
    } catch (error) {
      this.report(error, 'route')
      route = UNMATCHED_ROUTE
    }
    const endpoint = this.endpoint(tracked.method, route)
    if (endpoint.lastRequested === 0) this.touched.push(endpoint)
    if (time > endpoint.lastRequested) endpoint.lastRequested = time
    if (endpoint.level === 0) return
    if (this.batch.count + this.outstanding >= this.options.maxBufferedRows) {
      // Full at the last look: the writer may have written since.
      this.outstanding = this.writer.outstanding()
      if (this.batch.count + this.outstanding >= this.options.maxBufferedRows) {
        this.counters.dropped++
        return
      }
    }
    const status = headersSent(res)
      ? ((res as unknown as Fields)[FIELD_KEY.statusCode] as number)
      : 0
    const group = this.groupOf(req, ctx)
    const ip = this.ipOf(tracked, ctx)
    const outlier =
      endpoint.level >= 2 &&
      this.watch.finished(tracked, endpoint, time, durationUs, status, group, ip)
    this.batch.push(
      endpoint.slot,
      time,
      durationUs,
      status,
      group,
      ip,
      (writableFinished(res) ? 0 : ROW_ABORTED) | (outlier ? ROW_OUTLIER : 0),
    )
  }

  private groupOf(req: IncomingMessage, ctx: Ctx | undefined): string | null {
    const groupBy = this.options.groupBy
    if (groupBy === undefined) return null
    try {
      const group = groupBy(this.hooks.subject(req, ctx))
      return group === undefined || group === null || group === '' ? null : clientName(group)
    } catch (error) {
      this.report(error, 'groupBy')
      return null
    }
  }

  private ipOf(tracked: Tracked, ctx: Ctx | undefined): string | null {
    try {
      const getIp = this.options.getIp
      const ip =
        getIp !== undefined
          ? getIp(this.hooks.subject(tracked.req, ctx))
          : (this.hooks.ipOf(tracked.req, ctx) ?? tracked.socketIp)
      return ip === undefined || ip === null || ip === '' ? null : clientName(ip)
    } catch (error) {
      this.report(error, 'getIp')
      return null
    }
  }

  /**
   * The state of an endpoint, created on first sight. Past `maxEndpoints`, a
   * new route is counted under its method's unmatched endpoint instead, so a
   * route template that carries URL values cannot grow the table without end.
   */
  private endpoint(method: string, route: string, inFile = false): Endpoint {
    let routes = this.endpoints.get(method)
    if (routes === undefined) {
      routes = new Map()
      this.endpoints.set(method, routes)
    }
    let endpoint = routes.get(route)
    if (endpoint === undefined) {
      if (!inFile && route !== UNMATCHED_ROUTE && this.slots.length >= this.options.maxEndpoints) {
        if (!this.endpointLimitReported) {
          this.endpointLimitReported = true
          this.report(
            new Error(
              `more than ${this.options.maxEndpoints} endpoints (maxEndpoints): requests of ` +
                `routes not seen before are recorded under "${method} ${UNMATCHED_ROUTE}"`,
            ),
            'maxEndpoints',
          )
        }
        return this.endpoint(method, UNMATCHED_ROUTE, true)
      }
      endpoint = {
        slot: this.slots.length,
        method,
        route,
        level: this.options.defaultLevel,
        lastRequested: 0,
        durations: undefined,
        outlierMinute: 0,
        outliersThisMinute: 0,
      }
      this.slots.push(endpoint)
      routes.set(route, endpoint)
      // Only with defaultLevel 2 or 3, when the watch is on already.
      if (endpoint.level >= 2) this.watched.push(endpoint)
    }
    return endpoint
  }

  /**
   * Runs work the collector does on its own (a timer, a framework's internals
   * read at discovery): what it throws is reported, never thrown at the app.
   */
  safely(kind: string, work: () => void): void {
    try {
      work()
    } catch (error) {
      this.report(error, kind)
    }
  }

  /** Adds the routes `walk` finds to the endpoint table; what it throws is reported. */
  discoverFrom(walk: () => Iterable<DiscoveredRoute>): void {
    this.safely('discover', () => this.discover(walk()))
  }

  /** Adds an app's registered routes to the endpoint table, before their first request. */
  discover(routes: Iterable<DiscoveredRoute>): void {
    if (this.closed) return
    let added = false
    for (const { method, route } of routes) {
      const name = routeToString(route)
      if (this.endpoints.get(method)?.has(name) === true) continue
      this.discovered.push(this.endpoint(method, name).slot)
      added = true
    }
    // In the file when this returns (adapters discover when the app starts listening).
    if (added) this.flush()
  }

  /** Levels the writer read from the file (another connection's changes win). */
  private applyLevels(levels: EndpointLevel[]): void {
    if (this.profiler.running) this.safely('profiles', () => this.profiler.attributeNow())
    for (const [method, route, level] of levels) this.endpoint(method, route, true).level = level
    this.updateWatch()
  }

  /** Watches requests while some endpoint is (or new ones will be) at level 2 or 3. */
  private updateWatch(): void {
    this.watched = this.slots.filter((endpoint) => endpoint.level >= 2)
    const active = !this.closed && (this.watched.length > 0 || this.options.defaultLevel >= 2)
    const profiling =
      !this.closed &&
      (this.watched.some((endpoint) => endpoint.level === 3) || this.options.defaultLevel === 3)
    this.safely('outliers', () => this.watch.setActive(active, profiling))
    this.safely('profiles', () => this.profiler.setActive(profiling))
  }

  /**
   * Re-reads monitoring levels from the file now, e.g. right after another
   * connection changed one, so that the change applies to the next request.
   */
  refreshLevels(): void {
    if (!this.closed) this.writer.refreshLevels()
  }

  /** Reports rows dropped since the last report. */
  private reportDropped(): void {
    if (this.counters.dropped > this.reportedDropped) {
      const lost = this.counters.dropped - this.reportedDropped
      this.reportedDropped = this.counters.dropped
      this.report(
        new Error(
          `dropped ${lost} request(s): ${this.options.maxBufferedRows} were already waiting to be written (maxBufferedRows)`,
        ),
        'dropped',
      )
    }
  }

  /** What was collected since the last hand-over, as a batch for the writer; undefined if nothing. */
  private takeBatch(): { batch: Batch; rows: number } | undefined {
    if (
      this.batch.count === 0 &&
      this.outliers.length === 0 &&
      !this.profiler.hasSamples &&
      this.touched.length === 0 &&
      this.discovered.length === 0 &&
      this.defined === this.slots.length
    ) {
      return undefined
    }
    const endpoints: EndpointDefinition[] = []
    for (let slot = this.defined; slot < this.slots.length; slot++) {
      const { method, route, level } = this.slots[slot]!
      endpoints.push({ method, route, level })
    }
    const firstSlot = this.defined
    this.defined = this.slots.length
    const touched = new Float64Array(this.touched.length * 2)
    for (let i = 0; i < this.touched.length; i++) {
      const endpoint = this.touched[i]!
      touched[2 * i] = endpoint.slot
      touched[2 * i + 1] = endpoint.lastRequested
      endpoint.lastRequested = 0
    }
    this.touched = []
    const discovered = Int32Array.from(this.discovered)
    this.discovered = []
    const rows = this.batch.take()
    const outliers = this.outliers
    this.outliers = []
    const profiles = this.profiler.take()
    return {
      batch: { ...rows, firstSlot, endpoints, touched, discovered, outliers, profiles },
      rows: rows.count,
    }
  }

  /** Every flushInterval: hands what was collected to the writer, without waiting. */
  private handOver(): void {
    this.reportDropped()
    const taken = this.takeBatch()
    this.writer.send(taken?.batch, taken?.rows ?? 0)
    this.outstanding = this.writer.outstanding()
  }

  /** Hands what was collected over and waits until it is written; false if it could not be. */
  flush(): boolean {
    return this.flushNow(false)
  }

  private flushNow(final: boolean): boolean {
    if (this.closed) return this.batch.count === 0
    this.reportDropped()
    const taken = this.takeBatch()
    const written = this.writer.sendAndWait(taken?.batch, taken?.rows ?? 0, final)
    this.outstanding = this.writer.outstanding()
    return written
  }

  /**
   * The last write before closing or exiting: opens the file even if an attempt
   * failed less than 2 s ago, and waits longer for another process's lock.
   */
  flushFinal(): boolean {
    return this.flushNow(true)
  }

  /** Reports an error: to onError every time, else one warning per kind until the next good write. */
  report(error: unknown, kind: string): void {
    this.counters.errors++
    const err = error instanceof Error ? error : new Error(String(error))
    const onError = this.options.onError
    if (onError !== undefined) {
      try {
        onError(err)
      } catch {
        // a throwing onError must not take the app down either
      }
      return
    }
    const goodWrites = this.writer.goodWrites()
    if (goodWrites !== this.goodWritesSeen) {
      this.goodWritesSeen = goodWrites
      this.reportedKinds.clear()
    }
    const code = (err as { code?: unknown }).code
    const key = `${kind}:${typeof code === 'string' ? code : err.name}`
    if (this.reportedKinds.has(key)) return
    this.reportedKinds.add(key)
    console.warn(
      `[routemeter] ${kind} failed for ${this.database}: ${err.message} ` +
        '(the app keeps serving; the same error is not repeated until a write succeeds)',
    )
  }

  stats(): CollectorStats {
    return {
      written: this.writer.writtenRows(),
      pending: this.batch.count + Math.max(0, this.writer.outstanding()),
      ...this.counters,
      writerThread: this.writer.threaded,
      profiling: this.profiler.running,
    }
  }

  close(): void {
    if (this.closed) return
    clearInterval(this.flushTimer)
    this.watch.setActive(false)
    // The samples so far are attributed, then written with the rest.
    this.safely('profiles', () => this.profiler.setActive(false))
    this.flushFinal()
    this.closed = true
    openCollectors.delete(this)
    this.writer.close()
  }
}
/**
 * A collector's handle as a plain object (methods bound), for adapters that hand
 * out something else: a middleware function, the plain-http collector.
 */
export function handleOf(collector: RoutemeterHandle): RoutemeterHandle {
  return {
    flush: () => collector.flush(),
    close: () => collector.close(),
    stats: () => collector.stats(),
    database: collector.database,
    version: collector.version,
    node: collector.node,
  }
}

/** SQLITE_BUSY/LOCKED/FULL/IOERR may pass: keep the connection and the rows, try again. */
