/*
 * The outgoing operations of the requests being watched: HTTP (http.request
 * and fetch) and the database and cache clients that publish a
 * diagnostics_channel TracingChannel. An operation belongs to the request in
 * whose async context it started (AsyncLocalStorage), which is why the
 * context is entered only while some endpoint is at level 2 or 3.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import dc from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'
import { redactedUrl } from './redact.js'

/** One operation of a request; times on performance.now()'s clock. */
export interface OpenOperation {
  kind: string
  target: string
  start: number
  /** -1 while open */
  end: number
  error: string | undefined
}

/** What operations are attached to: a watched request. */
export interface OperationOwner {
  watched: boolean
  operations: OpenOperation[] | undefined
  operationsDropped: number
}

/** Most operations kept per request; the rest are counted. */
export const MAX_OPERATIONS = 64
/** Longest target kept (an SQL statement is cut). */
const MAX_TARGET_LENGTH = 160

/** TracingChannels watched without being asked: the clients known to publish one. */
export const BUILT_IN_CHANNELS = [
  'ioredis:command',
  'ioredis:batch',
  'node-redis:command',
  'node-redis:batch',
  'mysql2:query',
  'mysql2:execute',
] as const

interface ClientRequestLike {
  method?: string
  protocol?: string
  host?: string
  path?: string
  getHeader?(name: string): unknown
  once?(event: string, listener: () => void): unknown
}

interface UndiciRequestLike {
  method?: string
  origin?: string | URL
  path?: string
}

/** A TracingChannel's context, as the clients above fill it. */
interface TraceContext {
  command?: unknown
  query?: unknown
  sql?: unknown
  serverAddress?: unknown
  serverPort?: unknown
  error?: unknown
}

function cut(text: string): string {
  return text.length > MAX_TARGET_LENGTH ? `${text.slice(0, MAX_TARGET_LENGTH)}…` : text
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error)
}

/** 'BLPOP 127.0.0.1:6379', 'SELECT … (db.sock)': what a traced operation went to. */
export function traceTarget(context: TraceContext): string {
  const what = context.command ?? context.query ?? context.sql
  const server =
    context.serverAddress === undefined
      ? ''
      : context.serverPort === undefined || context.serverPort === null
        ? String(context.serverAddress)
        : `${String(context.serverAddress)}:${String(context.serverPort)}`
  const text = typeof what === 'string' ? what.replace(/\s+/g, ' ').trim() : ''
  return cut(text === '' ? server : server === '' ? text : `${text} ${server}`)
}

export class OperationTracker {
  /** the request whose code runs now, as far as async context follows it */
  readonly context = new AsyncLocalStorage<OperationOwner>()
  private readonly open = new WeakMap<object, OpenOperation>()
  private unsubscribers: Array<() => void> = []

  constructor(
    private readonly secret: ReadonlySet<string>,
    private readonly report: (error: unknown) => void,
  ) {}

  get started(): boolean {
    return this.unsubscribers.length > 0
  }

  /** Subscribes to the channels; `extra` are the user's TracingChannel names. */
  start(extra: readonly string[]): void {
    if (this.started) return
    this.on('http.client.request.start', (message) => this.httpStarted(message))
    this.on('http.client.request.error', (message) => {
      const { request, error } = message as { request: object; error: unknown }
      this.close(request, error)
    })
    this.on('undici:request:create', (message) => this.undiciStarted(message))
    this.on('undici:request:trailers', (message) =>
      this.close((message as { request: object }).request),
    )
    this.on('undici:request:error', (message) => {
      const { request, error } = message as { request: object; error: unknown }
      this.close(request, error)
    })
    for (const name of new Set([...BUILT_IN_CHANNELS, ...extra])) this.traceChannel(name)
  }

  stop(): void {
    for (const unsubscribe of this.unsubscribers) unsubscribe()
    this.unsubscribers = []
    this.context.disable()
  }

  /** Subscribes a handler that never throws into the publisher (the app's code). */
  private on(name: string, handler: (message: unknown) => void): void {
    const listener = (message: unknown): void => this.guard(() => handler(message))
    dc.subscribe(name, listener)
    this.unsubscribers.push(() => dc.unsubscribe(name, listener))
  }

  private traceChannel(name: string): void {
    const channel = dc.tracingChannel(name)
    const handlers = {
      start: (context: object) =>
        this.guard(() => this.opened(context, name, traceTarget(context))),
      asyncEnd: (context: object) => this.guard(() => this.close(context)),
      error: (context: object) =>
        this.guard(() => this.close(context, (context as TraceContext).error)),
    }
    channel.subscribe(handlers as never)
    this.unsubscribers.push(() => channel.unsubscribe(handlers as never))
  }

  private guard(work: () => void): void {
    try {
      work()
    } catch (error) {
      this.report(error)
    }
  }

  private httpStarted(message: unknown): void {
    const request = (message as { request: ClientRequestLike }).request
    const host = request.getHeader?.('host') ?? request.host ?? ''
    const url = `${request.protocol ?? 'http:'}//${String(host)}${request.path ?? '/'}`
    if (
      this.opened(request, 'http', `${request.method ?? 'GET'} ${redactedUrl(url, this.secret)}`)
    ) {
      // 'close' ends the exchange, answered or not; listening changes nothing for the app.
      request.once?.('close', () => this.close(request))
    }
  }

  private undiciStarted(message: unknown): void {
    const request = (message as { request: UndiciRequestLike }).request
    const url = `${String(request.origin ?? '')}${request.path ?? '/'}`
    this.opened(request, 'http', `${request.method ?? 'GET'} ${redactedUrl(url, this.secret)}`)
  }

  /** Attaches an operation to the request in whose context it starts; false if none is watched. */
  private opened(key: object, kind: string, target: string): boolean {
    const owner = this.context.getStore()
    if (owner === undefined || !owner.watched) return false
    const operations = (owner.operations ??= [])
    if (operations.length >= MAX_OPERATIONS) {
      owner.operationsDropped++
      return false
    }
    const operation: OpenOperation = {
      kind,
      target: cut(target),
      start: performance.now(),
      end: -1,
      error: undefined,
    }
    operations.push(operation)
    this.open.set(key, operation)
    return true
  }

  private close(key: object, error?: unknown): void {
    const operation = this.open.get(key)
    if (operation === undefined) return
    this.open.delete(key)
    operation.end = performance.now()
    if (error !== undefined && error !== null) operation.error = cut(errorText(error))
  }
}
