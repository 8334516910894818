/**
 * The remote API: the collector answers a few authenticated routes under a
 * prefix, ahead of the app's own routing, so that the desktop app can pull
 * the metrics file from a running service and change an endpoint's
 * monitoring level there. These requests are never recorded.
 */
import { createReadStream } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { resolve } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { ResolvedOptions } from '../core/options.js'
import type { AppVersion } from '../core/version.js'
import { FailureThrottle, TokenCheck } from './auth.js'
import type { ResolvedRemote } from './options.js'
import { createSnapshot, removeSnapshot, SMALL_CHUNKS, type Snapshot } from './snapshot.js'
import { RemoteTaskError, type FileFacts } from './tasks.js'
import { runRemoteTask } from './thread.js'

export { resolveRemote, TOKEN_ENV, type RemoteOptions, type ResolvedRemote } from './options.js'

/** What the remote API needs of the collector. */
export interface RemoteHost {
  readonly database: string
  readonly version: AppVersion
  readonly node: string
  /** Re-reads monitoring levels from the file, so a change applies to the next request. */
  refreshLevels(): void
}

export interface RemoteApi {
  readonly prefix: string
  /** Whether a request is for the remote API (then `handle` answers it, not the app). */
  matches(req: IncomingMessage): boolean
  /**
   * Answers a request of the remote API. Never rejects: a failure is
   * reported and answered with 500, or ends the response if it had begun.
   * `parsedBody` is a body a framework's parser has already read; `clientIp`
   * the client's address as the app sees it (behind a proxy it trusts), by
   * which failed tokens are counted (default: the socket's).
   */
  handle(
    req: IncomingMessage,
    res: ServerResponse,
    parsedBody?: unknown,
    clientIp?: string,
  ): Promise<void>
}

/** Largest body of POST {prefix}/levels. */
export const MAX_LEVELS_BODY = 16 * 1024

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  })
  res.end(text)
}

/** A header value is Latin-1 without control characters; other node names go URI-encoded. */
const headerSafe = (value: string): string =>
  /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value)

/** The remote API of a collector, or undefined when the `remote` option is off. */
export function remoteOf(options: ResolvedOptions, host: RemoteHost): RemoteApi | undefined {
  if (options.remote === undefined) return undefined
  const onError =
    options.onError ??
    ((error: Error) => console.warn(`[routemeter] ${error.message} (the app keeps serving)`))
  return createRemote(options.remote, host, (error) => {
    try {
      onError(error)
    } catch {
      // a throwing onError must not take the app down either
    }
  })
}

export function createRemote(
  options: ResolvedRemote,
  host: RemoteHost,
  onError: (error: Error) => void,
): RemoteApi {
  const { prefix } = options
  const database = resolve(host.database)
  const tokens = new TokenCheck(options.token)
  const throttle = new FailureThrottle()

  function matches(req: IncomingMessage): boolean {
    const url = req.url ?? '/'
    if (!url.startsWith(prefix)) return false
    const next = url.charCodeAt(prefix.length)
    // "/routemeter", "/routemeter/…" and "/routemeter?…", not "/routemeterish"
    return Number.isNaN(next) || next === 0x2f || next === 0x3f
  }

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    parsedBody?: unknown,
    clientIp?: string,
  ) {
    try {
      const client = clientIp ?? req.socket?.remoteAddress ?? 'unknown'
      if (!authorized(req, res, client)) return
      const url = new URL(req.url ?? '/', 'http://routemeter.invalid')
      const route = url.pathname.slice(prefix.length)
      const method = req.method ?? 'GET'
      const allow =
        route === '/levels' ? 'POST' : route === '/info' || route === '/snapshot' ? 'GET' : ''
      if (allow === '') throw new HttpError(404, `no such route: ${url.pathname}`)
      if (method !== allow) {
        res.setHeader('Allow', allow)
        throw new HttpError(405, `${url.pathname} accepts ${allow} only`)
      }
      if (route === '/info') await info(res)
      else if (route === '/levels') await setLevel(req, res, parsedBody)
      else await sendSnapshot(res, parseSince(url.searchParams.get('since')))
    } catch (error) {
      if (error instanceof HttpError || error instanceof RemoteTaskError) {
        const [status, headers] =
          error instanceof HttpError ? [error.status, error.headers] : [error.status]
        if (!res.headersSent) sendJson(res, status, { error: error.message }, headers)
        return
      }
      const err = error instanceof Error ? error : new Error(String(error))
      if (err.name === 'AbortError' || res.destroyed) return // the client left
      onError(new Error(`remote ${req.method} ${req.url?.split('?')[0]} failed: ${err.message}`))
      if (!res.headersSent) sendJson(res, 500, { error: err.message })
      else res.destroy(err)
    }
  }

  /** Checks the bearer token; a refused request is answered here. */
  function authorized(req: IncomingMessage, res: ServerResponse, client: string): boolean {
    const retryMs = throttle.attempt(client)
    if (retryMs > 0) {
      const retryAfter = String(Math.max(1, Math.ceil(retryMs / 1000)))
      sendJson(
        res,
        429,
        { error: 'too many failed attempts; try again later' },
        {
          'Retry-After': retryAfter,
        },
      )
      return false
    }
    const refusal = tokens.refusal(req.headers.authorization)
    if (refusal === undefined) {
      throttle.succeed(client)
      return true
    }
    sendJson(res, 401, { error: refusal }, { 'WWW-Authenticate': 'Bearer' })
    return false
  }

  async function info(res: ServerResponse) {
    const { schemaVersion, ...figures } = await runRemoteTask<FileFacts>(
      { kind: 'info', database },
      untilClosed(res),
    )
    sendJson(res, 200, {
      schemaVersion,
      node: host.node,
      appVersion: host.version.name,
      ...figures,
    })
  }

  async function sendSnapshot(res: ServerResponse, since?: number) {
    let snapshot: Snapshot | undefined
    try {
      // Stops copying as soon as the client goes away.
      snapshot = await createSnapshot(database, { since, signal: untilClosed(res) })
      if (res.destroyed) return
      res.writeHead(200, {
        'Content-Type': 'application/gzip',
        'Content-Length': snapshot.compressedBytes,
        'Content-Disposition': `attachment; filename="routemeter-${since === undefined ? 'snapshot' : `since-${since}`}.db.gz"`,
        'Cache-Control': 'no-store',
        'X-Routemeter-Uncompressed-Length': snapshot.uncompressedBytes,
        'X-Routemeter-Node': headerSafe(host.node),
        'X-Routemeter-Schema': snapshot.schemaVersion,
        'X-Routemeter-Last-Request-Id': snapshot.lastRequestId,
        ...(since === undefined ? {} : { 'X-Routemeter-Since': since }),
      })
      await pipeline(createReadStream(snapshot.gzipPath, SMALL_CHUNKS), res)
    } finally {
      if (snapshot !== undefined) await removeSnapshot(snapshot.dir)
    }
  }

  async function setLevel(req: IncomingMessage, res: ServerResponse, parsedBody: unknown) {
    const body = await readJson(req, parsedBody)
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new HttpError(400, 'the body must be a JSON object { "method", "route", "level" }')
    }
    const { method, route, level } = body as Record<string, unknown>
    if (typeof method !== 'string' || method === '') {
      throw new HttpError(400, '"method" must be an HTTP method such as "GET"')
    }
    if (typeof route !== 'string' || route === '') {
      throw new HttpError(400, '"route" must be an endpoint\'s route such as "/books/:id"')
    }
    if (level !== 0 && level !== 1 && level !== 2 && level !== 3) {
      throw new HttpError(400, '"level" must be one of 0, 1, 2, 3')
    }
    const endpointMethod = method.toUpperCase()
    // Not aborted when the client leaves: a change once sent is made.
    await runRemoteTask(
      { kind: 'level', database, method: endpointMethod, route, level },
      new AbortController().signal,
    )
    host.refreshLevels()
    sendJson(res, 200, { method: endpointMethod, route, level })
  }

  return { prefix, matches, handle }
}

/** Aborted when the response is closed: the client left, or it has been answered. */
function untilClosed(res: ServerResponse): AbortSignal {
  const closed = new AbortController()
  if (res.destroyed) closed.abort()
  else res.once('close', () => closed.abort())
  return closed.signal
}

/** `since`: absent, or a request id (a non-negative integer). */
function parseSince(value: string | null): number | undefined {
  if (value === null) return undefined
  if (!/^\d{1,15}$/.test(value)) {
    throw new HttpError(400, '"since" must be a request id, a non-negative integer')
  }
  return Number(value)
}

/** Reads a JSON body of at most MAX_LEVELS_BODY bytes. */
async function readJson(req: IncomingMessage, parsedBody: unknown): Promise<unknown> {
  if (req.readableEnded) {
    // A body parser registered before the collector's middleware has read it.
    if (parsedBody !== undefined) return parsedBody
    throw new HttpError(400, 'the request body was already read by another middleware')
  }
  // Answered before the rest arrives; the connection is closed rather than read to its end.
  const tooLarge = new HttpError(400, `the body must be at most ${MAX_LEVELS_BODY} bytes`, {
    Connection: 'close',
  })
  if (Number(req.headers['content-length'] ?? 0) > MAX_LEVELS_BODY) throw tooLarge
  const text = await new Promise<string>((done, fail) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size <= MAX_LEVELS_BODY) chunks.push(chunk)
      else {
        req.off('data', onData)
        req.resume() // discard the rest
        fail(tooLarge)
      }
    }
    req.on('data', onData)
    req.once('end', () => done(Buffer.concat(chunks).toString('utf8')))
    req.once('error', fail)
    // A client that leaves mid-body: nothing to answer ('close' after 'end' changes nothing).
    req.once('close', () =>
      fail(Object.assign(new Error('the client left'), { name: 'AbortError' })),
    )
  })
  try {
    return JSON.parse(text)
  } catch {
    throw new HttpError(400, 'the body is not valid JSON')
  }
}
