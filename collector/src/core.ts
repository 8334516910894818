import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { ResolvedOptions } from './options.js'
import { UNMATCHED_ROUTE } from './schema/types.js'
import {
  MetricsStore,
  WRITE_BUSY_TIMEOUT_MS,
  type EndpointState,
  type PendingRequest,
} from './store.js'
import { detectVersion, type AppVersion } from './version.js'

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

const kTracked = Symbol('routemeter.tracked')

/** Per-request state, hung on the response under a Symbol. */
class Tracked {
  constructor(
    readonly collector: Collector,
    readonly req: IncomingMessage,
    readonly ctx: unknown,
    readonly start: number,
    readonly socketIp: string | undefined,
  ) {}
}

type TrackedResponse = ServerResponse & { [kTracked]?: Tracked }

// One shared listener (no closure per request): `this` is the response.
function onResponseClose(this: TrackedResponse): void {
  const tracked = this[kTracked]
  if (tracked !== undefined) tracked.collector.finish(tracked, this)
}

/** Turns a route as frameworks keep it (string, RegExp, array) into the endpoint's route. */
export function routeToString(route: string | RegExp | readonly unknown[]): string {
  if (typeof route === 'string') return route
  if (route instanceof RegExp) return String(route)
  return `[${route.map((part) => routeToString(part as string | RegExp)).join(',')}]`
}

const REOPEN_DELAY_MS = 2000
const MAX_WRITE_BACKOFF_MS = 4000
const FINAL_BUSY_TIMEOUT_MS = 2000

/** Every open collector, flushed when the process exits. */
const openCollectors = new Set<Collector>()
let exitHooksInstalled = false

function flushAllSync(): void {
  for (const collector of openCollectors) collector.flushFinal()
}

function installExitHooks(): void {
  if (exitHooksInstalled) return
  exitHooksInstalled = true
  process.on('exit', flushAllSync)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      flushAllSync()
      // Only we listen: do what Node would have done without us, end the process.
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal)
        process.kill(process.pid, signal)
      }
    }
    process.on(signal, onSignal)
  }
}

/**
 * The framework-agnostic collector. Per request it reads a clock, listens
 * once for the response's `close`, and pushes one row into a bounded buffer;
 * a timer writes the buffer into the metrics file in one transaction.
 */
export class Collector<Ctx = unknown> implements RoutemeterHandle {
  readonly database: string
  readonly version: AppVersion
  readonly node: string
  private readonly options: ResolvedOptions
  private readonly hooks: FrameworkHooks<Ctx>
  private store: MetricsStore | undefined
  private nextOpenAttempt = 0
  /** after a busy or full file, writes pause this long (doubling up to 4 s) */
  private writeBackoff = 0
  private nextWriteAttempt = 0
  private readonly endpoints = new Map<string, EndpointState>()
  private pending: PendingRequest[] = []
  private readonly touched = new Set<EndpointState>()
  private discovered: EndpointState[] = []
  private lastDataVersion: number | undefined
  private readonly reportedKinds = new Set<string>()
  private readonly counters = { written: 0, dropped: 0, errors: 0 }
  /** whether passing maxEndpoints was reported */
  private endpointLimitReported = false
  /** dropped count already reported, so each new loss is reported once */
  private reportedDropped = 0
  private readonly flushTimer: NodeJS.Timeout
  private readonly pollTimer: NodeJS.Timeout
  private closed = false

  constructor(options: ResolvedOptions, hooks: FrameworkHooks<Ctx>) {
    this.options = options
    this.hooks = hooks
    this.database = options.database
    this.version = detectVersion(options)
    this.node = options.node
    this.openStore()
    this.flushTimer = setInterval(() => this.flush(), options.flushInterval).unref()
    this.pollTimer = setInterval(() => this.pollLevels(), options.levelPollInterval).unref()
    openCollectors.add(this)
    if (options.flushOnExit) installExitHooks()
  }

  /** Hot path: called when a request starts. */
  track(req: IncomingMessage, res: ServerResponse, ctx?: Ctx): void {
    const response = res as TrackedResponse
    if (this.closed || response[kTracked] !== undefined) return
    if (this.options.ignore !== undefined && this.isIgnored(req)) return
    // The socket's address is read now: once an aborted socket is destroyed it is gone.
    const socketIp = this.options.getIp === undefined ? req.socket?.remoteAddress : undefined
    response[kTracked] = new Tracked(this, req, ctx, performance.now(), socketIp)
    response.on('close', onResponseClose)
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
    const time = Math.round(performance.timeOrigin + tracked.start)
    const ctx = tracked.ctx as Ctx | undefined
    const req = tracked.req
    let route: string
    try {
      const matched = this.hooks.routeOf(req, ctx)
      route = matched === undefined ? UNMATCHED_ROUTE : routeToString(matched)
    } catch (error) {
      this.report(error, 'route')
      route = UNMATCHED_ROUTE
    }
    const endpoint = this.endpoint(req.method ?? 'GET', route)
    if (time > endpoint.pendingLastRequested) endpoint.pendingLastRequested = time
    this.touched.add(endpoint)
    if (endpoint.level === 0) return
    if (this.pending.length >= this.options.maxBufferedRows) {
      this.counters.dropped++
      return
    }
    this.pending.push({
      endpoint,
      time,
      durationUs,
      status: res.headersSent ? res.statusCode : 0,
      group: this.groupOf(req, ctx),
      ip: this.ipOf(tracked, ctx),
      aborted: res.writableFinished ? 0 : 1,
    })
  }

  private groupOf(req: IncomingMessage, ctx: Ctx | undefined): string | null {
    const groupBy = this.options.groupBy
    if (groupBy === undefined) return null
    try {
      const group = groupBy(this.hooks.subject(req, ctx))
      return group === undefined || group === null || group === '' ? null : String(group)
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
      return ip === undefined || ip === null || ip === '' ? null : String(ip)
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
  private endpoint(method: string, route: string, inFile = false): EndpointState {
    const key = `${method} ${route}`
    let endpoint = this.endpoints.get(key)
    if (endpoint === undefined) {
      if (
        !inFile &&
        route !== UNMATCHED_ROUTE &&
        this.endpoints.size >= this.options.maxEndpoints
      ) {
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
        id: undefined,
        method,
        route,
        level: this.options.defaultLevel,
        pendingLastRequested: 0,
      }
      this.endpoints.set(key, endpoint)
    }
    return endpoint
  }

  /** Adds an app's registered routes to the endpoint table, before their first request. */
  discover(routes: Iterable<DiscoveredRoute>): void {
    if (this.closed) return
    let added = false
    for (const { method, route } of routes) {
      const name = routeToString(route)
      if (this.endpoints.has(`${method} ${name}`)) continue
      this.discovered.push(this.endpoint(method, name))
      added = true
    }
    if (added) this.flush()
  }

  flush(): boolean {
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
    if (this.pending.length === 0 && this.touched.size === 0 && this.discovered.length === 0) {
      return true
    }
    if (Date.now() < this.nextWriteAttempt) return false
    const store = this.openStore()
    if (store === undefined) return false
    const requests = this.pending
    const touched = [...this.touched]
    const discovered = this.discovered
    try {
      store.write(requests, touched, discovered)
    } catch (error) {
      this.report(error, 'write')
      if (isTransient(error)) {
        this.writeBackoff = Math.min(Math.max(this.writeBackoff * 2, 250), MAX_WRITE_BACKOFF_MS)
        this.nextWriteAttempt = Date.now() + this.writeBackoff
      } else this.dropStore()
      return false
    }
    this.writeBackoff = 0
    this.pending = []
    this.discovered = []
    for (const endpoint of touched) endpoint.pendingLastRequested = 0
    this.touched.clear()
    this.counters.written += requests.length
    this.reportedKinds.clear()
    return true
  }

  /** Applies monitoring levels changed in the file by another process (the desktop app). */
  pollLevels(): void {
    const store = this.openStore()
    if (store === undefined) return
    try {
      const dataVersion = store.dataVersion()
      if (dataVersion === this.lastDataVersion) return
      this.lastDataVersion = dataVersion
      this.loadEndpoints(store)
    } catch (error) {
      this.report(error, 'poll')
      if (!isTransient(error)) this.dropStore()
    }
  }

  /**
   * Re-reads monitoring levels from the file now, e.g. right after another
   * connection changed one, so that the change applies to the next request.
   */
  refreshLevels(): void {
    this.lastDataVersion = undefined
    this.pollLevels()
  }

  private loadEndpoints(store: MetricsStore): void {
    for (const row of store.endpoints()) {
      const endpoint = this.endpoint(row.method, row.route, true)
      endpoint.id = row.id
      endpoint.level = row.monitor_level
    }
  }

  /** The open store; opens (or reopens a deleted or replaced file) when needed, at most every 2 s. */
  private openStore(): MetricsStore | undefined {
    if (this.closed) return undefined
    if (this.store !== undefined) {
      if (this.store.isSameFile()) return this.store
      this.report(
        new Error(`the metrics file ${this.store.path} was deleted or replaced; reopening it`),
        'replaced',
      )
      this.dropStore()
    }
    const now = Date.now()
    if (now < this.nextOpenAttempt) return undefined
    try {
      this.store = new MetricsStore(
        this.options.database,
        this.version,
        Date.now(),
        undefined,
        this.node,
      )
      this.loadEndpoints(this.store)
      this.lastDataVersion = this.store.dataVersion()
      return this.store
    } catch (error) {
      this.nextOpenAttempt = now + REOPEN_DELAY_MS
      this.report(error, 'open')
      return undefined
    }
  }

  /** Forgets the connection; endpoints get their ids again from the next file. */
  private dropStore(): void {
    try {
      this.store?.close()
    } catch {
      // closing a broken connection may fail too; it is dropped either way
    }
    this.store = undefined
    this.nextOpenAttempt = Date.now() + REOPEN_DELAY_MS
    for (const endpoint of this.endpoints.values()) {
      if (endpoint.id !== undefined) {
        endpoint.id = undefined
        this.touched.add(endpoint)
      }
    }
  }

  /** Reports an error: to onError every time, else one warning per kind until the next good write. */
  private report(error: unknown, kind: string): void {
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
    const code = (err as { code?: unknown }).code
    const key = `${kind}:${typeof code === 'string' ? code : err.name}`
    if (this.reportedKinds.has(key)) return
    this.reportedKinds.add(key)
    console.warn(
      `[routemeter] ${kind} failed for ${this.database}: ${err.message} ` +
        '(the app keeps serving; the same error is not repeated until a write succeeds)',
    )
  }

  /**
   * The last write before closing or exiting: opens the file even if an attempt
   * failed less than 2 s ago, rather than lose what is buffered.
   */
  flushFinal(): boolean {
    this.nextOpenAttempt = 0
    this.nextWriteAttempt = 0
    // Last chance: wait longer for another process's lock than a periodic write does.
    this.store?.setBusyTimeout(FINAL_BUSY_TIMEOUT_MS)
    try {
      return this.flush()
    } finally {
      this.store?.setBusyTimeout(WRITE_BUSY_TIMEOUT_MS)
    }
  }

  stats(): CollectorStats {
    return { ...this.counters, pending: this.pending.length }
  }

  close(): void {
    if (this.closed) return
    clearInterval(this.flushTimer)
    clearInterval(this.pollTimer)
    this.flushFinal()
    this.closed = true
    openCollectors.delete(this)
    this.store?.close()
    this.store = undefined
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
function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown }).code
  return (
    typeof code === 'string' &&
    (code.startsWith('SQLITE_BUSY') ||
      code.startsWith('SQLITE_LOCKED') ||
      code === 'SQLITE_FULL' ||
      code.startsWith('SQLITE_IOERR'))
  )
}
