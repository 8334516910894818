/**
 * One file: the routes of web mode and the checks every request passes (Host, origin, method), read top to bottom.
 *
 * Web mode: the dashboard API over HTTP and the renderer's static build,
 * for any browser. Same services as the desktop app, same validation.
 *
 *   GET  /api/<read method>?<args>   → 200 result JSON | 4xx/5xx { error: ApiError }
 *   POST /api/<write method>  (JSON) → 200 result JSON | 4xx/5xx { error: ApiError }
 *   GET  /api/events                 → server-sent events, `data: <FileEvent JSON>`
 *   GET  /, /assets/…                → the renderer build (index.html for `/`)
 */
import { Router } from '@koa/router'
import Koa, { type Context, type Next } from 'koa'
import { createReadStream, readFileSync, realpathSync, statSync, type Stats } from 'node:fs'
import type { Server } from 'node:http'
import { isIP, type AddressInfo } from 'node:net'
import { extname, join, resolve, sep } from 'node:path'
import { PassThrough } from 'node:stream'
import { brotliCompressSync, constants as zlibConstants, gzipSync } from 'node:zlib'
import type { ApiError, ApiMethod, DashboardApi, FileEvent, SourcesApi } from '../api/contract.js'
import { SOURCES_READ_METHODS, type SourcesState } from '../api/contract.js'
import { callApi } from '../api/dispatch.js'
import { badArgument, DashboardError, toApiError } from '../api/errors.js'
import { argsFromQuery, httpStatus, isWriteMethod } from '../api/http.js'
import {
  API_METHODS,
  isApiMethod,
  isSourcesMethod,
  SOURCES_METHODS,
  validateSourcesArgs,
} from '../api/validate.js'
import { CONTENT_SECURITY_POLICY } from '../shell/security.js'

/** What the server needs of the service: the API and its file events. */
export interface WebService extends DashboardApi {
  onFileEvent(listener: (event: FileEvent) => void): () => void
}

export interface WebServerOptions {
  service: WebService
  /** default 127.0.0.1: only this machine (use an SSH tunnel to look from elsewhere) */
  host?: string
  /** default 0: any free port */
  port?: number
  /** the renderer build (index.html and assets); without it only the API is served */
  staticDir?: string
  /** let the browser open other files on this machine; default false */
  allowOpen?: boolean
  /** ms between two heartbeat comments on the event stream; default 15 000 */
  heartbeatMs?: number
  /** servers and merged datasets, under /api/sources/<method>; absent: not served */
  sources?: SourcesApi
}

export interface WebServer {
  /** e.g. http://127.0.0.1:41234/ */
  url: string
  server: Server
  close(): Promise<void>
}

/** The same policy as the desktop window: one renderer, one set of rules. */
export { CONTENT_SECURITY_POLICY }

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
}

/** The sources state of a server started without a sources API. */
const NO_SOURCES: SourcesState = {
  remoteAllowed: false,
  openAllowed: false,
  servers: [],
  pull: null,
  pullError: null,
  lastPull: null,
  dataset: null,
}

/** Largest JSON body a write method accepts. */
const MAX_BODY_BYTES = 64 * 1024

function sendError(ctx: Context, error: ApiError, status = httpStatus(error)): void {
  ctx.status = status
  ctx.set('Cache-Control', 'no-store')
  ctx.body = { error }
}

/** Host names that always reach this machine's loopback interface. */
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]'])

/** A Host header's name (lower case, IPv6 in brackets) and port; undefined when malformed. */
export function parseHostHeader(header: string): { name: string; port: string } | undefined {
  const match = /^(\[[0-9a-f:.]+\]|[^:@[\]/\s]+)(?::(\d{1,5}))?$/i.exec(header)
  if (match === null) return undefined
  return { name: match[1]!.toLowerCase(), port: match[2] ?? '' }
}

/**
 * Whether a request's Host header names this server: the address it is bound
 * to, `localhost` and the loopback literals when bound to loopback, any IP
 * literal when bound to every interface, and the name given as `host`, each
 * with the server's port. A page on another name that resolves here (DNS
 * rebinding) sends its own name, and is refused.
 */
export function isOwnHost(
  header: string,
  bound: { host: string; address: string; port: number },
): boolean {
  const parsed = parseHostHeader(header)
  if (parsed === undefined) return false
  const port = String(bound.port)
  if (parsed.port !== port && !(parsed.port === '' && port === '80')) return false
  const bracket = (ip: string): string => (isIP(ip) === 6 ? `[${ip}]` : ip).toLowerCase()
  const { name } = parsed
  if (name === bracket(bound.address) || name === bracket(bound.host)) return true
  const address = bound.address
  const loopback = address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address)
  if (loopback) return LOOPBACK_NAMES.has(name)
  const everywhere = address === '0.0.0.0' || address === '::'
  // An IP literal is the page's own origin: no other site's name can stand behind it.
  return everywhere && (name === 'localhost' || isIP(name.replace(/^\[|\]$/g, '')) !== 0)
}

async function readJsonBody(ctx: Context): Promise<unknown> {
  const type = ctx.request.type
  if (type !== 'application/json') {
    // Also what keeps a plain HTML form on another site from posting here.
    throw badArgument('send the argument as a JSON body with Content-Type: application/json')
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) throw badArgument(`the body is larger than ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') return {}
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw badArgument('the body is not valid JSON')
  }
}

export async function startWebServer(options: WebServerOptions): Promise<WebServer> {
  const { service } = options
  const host = options.host ?? '127.0.0.1'
  const heartbeatMs = options.heartbeatMs ?? 15_000
  const staticRoot = options.staticDir === undefined ? undefined : resolve(options.staticDir)
  const streams = new Set<PassThrough>()

  // Filled in once the server listens: the address and port the Host header must name.
  const bound = { host, address: host, port: -1 }
  const app = new Koa()
  app.proxy = false
  // Errors are answered by the handlers; keep Koa from printing expected ones.
  app.silent = true

  app.use(async (ctx: Context, next: Next) => {
    ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY)
    ctx.set('X-Content-Type-Options', 'nosniff')
    ctx.set('Referrer-Policy', 'no-referrer')
    ctx.set('X-Frame-Options', 'DENY')
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin')
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin')
    // DNS rebinding: a page of another site must not reach this server under its own name.
    if (!isOwnHost(ctx.get('Host'), bound)) {
      const message = `unexpected Host header "${ctx.get('Host').slice(0, 100)}"`
      sendError(ctx, { code: 'BAD_ARGUMENT', message }, 421)
      return
    }
    await next()
  })

  const router = new Router({ prefix: '/api' })

  router.get('/events', (ctx) => {
    const stream = new PassThrough()
    streams.add(stream)
    ctx.req.socket.setTimeout(0)
    ctx.req.socket.setNoDelay(true)
    ctx.status = 200
    ctx.set('Content-Type', 'text/event-stream; charset=utf-8')
    ctx.set('Cache-Control', 'no-cache, no-transform')
    ctx.set('X-Accel-Buffering', 'no')
    ctx.body = stream
    stream.write('retry: 2000\n: connected\n\n')
    const unsubscribe = service.onFileEvent((event) => {
      stream.write(`data: ${JSON.stringify(event)}\n\n`)
    })
    // Comments keep proxies and SSH tunnels from dropping an idle stream.
    const heartbeat = setInterval(() => stream.write(': heartbeat\n\n'), heartbeatMs)
    let open = true
    const cleanup = (): void => {
      if (!open) return
      open = false
      clearInterval(heartbeat)
      unsubscribe()
      streams.delete(stream)
      stream.end()
    }
    // The response's close, not the request's: that one fires once the request is read.
    ctx.res.on('close', cleanup)
    stream.on('close', cleanup)
  })

  const handle = async (ctx: Context, method: ApiMethod, args: unknown): Promise<void> => {
    try {
      if (method === 'openFile' && options.allowOpen !== true) {
        throw new DashboardError(
          'READ_ONLY',
          'This server shows one file; start it with --allow-open to open others from the browser.',
        )
      }
      // Where HTTP enters: the query string or body is validated here, once.
      const answer = await callApi(service, method, args)
      if (!answer.ok) {
        sendError(ctx, answer.error)
        return
      }
      ctx.status = 200
      ctx.set('Cache-Control', 'no-store')
      ctx.body = answer.value
    } catch (error) {
      sendError(ctx, toApiError(error))
    }
  }

  // Servers and datasets: GET /api/sources/state, POST /api/sources/<method> with a JSON body.
  router.all('/sources/:method', async (ctx) => {
    const name = ctx.params.method
    const sources = options.sources
    // Without a sources API the page still asks what it may offer: nothing (not an error).
    if (sources === undefined && name === 'state' && ctx.method === 'GET') {
      ctx.set('Cache-Control', 'no-store')
      ctx.body = NO_SOURCES
      return
    }
    if (sources === undefined || !isSourcesMethod(name)) {
      sendError(
        ctx,
        {
          code: 'BAD_ARGUMENT',
          message:
            sources === undefined
              ? 'this server has no sources API'
              : `unknown sources method "${name}"; known: ${SOURCES_METHODS.join(', ')}`,
        },
        404,
      )
      return
    }
    const read = SOURCES_READ_METHODS.includes(name)
    if (ctx.method !== (read ? 'GET' : 'POST')) {
      ctx.set('Allow', read ? 'GET' : 'POST')
      sendError(
        ctx,
        { code: 'BAD_ARGUMENT', message: `${name} is called with ${read ? 'GET' : 'POST'}` },
        405,
      )
      return
    }
    try {
      const args = read ? {} : await readJsonBody(ctx)
      const valid = validateSourcesArgs(name, args)
      const call = sources[name] as (args: unknown) => Promise<unknown>
      ctx.status = 200
      ctx.set('Cache-Control', 'no-store')
      ctx.body = await call.call(sources, valid)
    } catch (error) {
      sendError(ctx, toApiError(error))
    }
  })

  router.all('/:method', async (ctx) => {
    const name = ctx.params.method
    if (!isApiMethod(name)) {
      sendError(
        ctx,
        {
          code: 'BAD_ARGUMENT',
          message: `unknown API method "${name}"; known: ${API_METHODS.join(', ')}`,
        },
        404,
      )
      return
    }
    const write = isWriteMethod(name)
    const expected = write ? 'POST' : 'GET'
    if (ctx.method !== expected && !(ctx.method === 'HEAD' && !write)) {
      ctx.set('Allow', write ? 'POST' : 'GET, HEAD')
      sendError(
        ctx,
        { code: 'BAD_ARGUMENT', message: `${name} is called with ${expected} /api/${name}` },
        405,
      )
      return
    }
    if (!write) {
      await handle(ctx, name, argsFromQuery(name, new URLSearchParams(ctx.querystring)))
      return
    }
    let body: unknown
    try {
      body = await readJsonBody(ctx)
    } catch (error) {
      sendError(ctx, toApiError(error), ctx.request.type === 'application/json' ? 400 : 415)
      return
    }
    await handle(ctx, name, body)
  })

  app.use(router.routes())
  app.use(async (ctx, next) => {
    if (ctx.path === '/api' || ctx.path.startsWith('/api/')) {
      sendError(ctx, { code: 'BAD_ARGUMENT', message: `no API at ${ctx.path}` }, 404)
      return
    }
    await next()
  })
  app.use((ctx) => serveStatic(ctx, staticRoot))

  const server = app.listen({ host, port: options.port ?? 0 })
  await new Promise<void>((resolveListen, reject) => {
    server.once('listening', resolveListen)
    server.once('error', reject)
  })
  const address = server.address() as AddressInfo
  bound.address = address.address
  bound.port = address.port
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    url: `http://${urlHost}:${address.port}/`,
    server,
    close: () =>
      new Promise<void>((resolveClose) => {
        for (const stream of streams) stream.end()
        server.close(() => resolveClose())
        server.closeIdleConnections()
        // Event streams never go idle: end them with the server.
        setImmediate(() => server.closeAllConnections())
      }),
  }
}

/** The file of `root` a URL path names; null when the path leaves it or names a dotfile. */
export function resolveStaticPath(root: string, urlPath: string): string | null {
  let path: string
  try {
    path = decodeURIComponent(urlPath)
  } catch {
    return null
  }
  if (path.includes('\0') || path.includes('\\')) return null
  if (path.endsWith('/')) path += 'index.html'
  const segments = path.split('/').filter((s) => s !== '')
  if (segments.some((s) => s === '..' || s.startsWith('.'))) return null
  const file = join(root, ...segments)
  return file.startsWith(root + sep) ? file : null
}

function statFile(path: string): Stats | undefined {
  try {
    const stats = statSync(path)
    return stats.isFile() ? stats : undefined
  } catch {
    return undefined
  }
}

function serveStatic(ctx: Context, root: string | undefined): void {
  if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
    ctx.set('Allow', 'GET, HEAD')
    ctx.status = 405
    return
  }
  if (root === undefined) {
    ctx.status = 404
    ctx.type = 'text/plain'
    ctx.body = 'Routemeter web mode: this server was started without the renderer build (--static).'
    return
  }
  const file = resolveStaticPath(root, ctx.path)
  if (file === null) {
    ctx.status = 403
    ctx.type = 'text/plain'
    ctx.body = 'Forbidden'
    return
  }
  let target = file
  let stats = statFile(target)
  // A path without a file extension is a page of the app: its index.html answers.
  if (stats === undefined && extname(file) === '') {
    target = join(root, 'index.html')
    stats = statFile(target)
  }
  if (stats === undefined) {
    ctx.status = 404
    ctx.type = 'text/plain'
    ctx.body =
      target === join(root, 'index.html')
        ? `Routemeter web mode: no renderer build in ${root} (run the build, or pass --static).`
        : 'Not found'
    return
  }
  // A symbolic link inside the build must not lead outside it.
  let real: string
  let realRoot: string
  try {
    real = realpathSync(target)
    realRoot = realpathSync(root)
  } catch {
    ctx.status = 404
    return
  }
  if (!real.startsWith(realRoot + sep)) {
    ctx.status = 403
    ctx.type = 'text/plain'
    ctx.body = 'Forbidden'
    return
  }
  ctx.status = 200
  const extension = extname(target).toLowerCase()
  ctx.set('Content-Type', CONTENT_TYPES[extension] ?? 'application/octet-stream')
  // A hashed asset's name changes with its content: browsers keep it; the rest is revalidated.
  ctx.set(
    'Cache-Control',
    HASHED_ASSET.test(ctx.path) ? 'public, max-age=31536000, immutable' : 'no-cache',
  )
  ctx.set('Vary', 'Accept-Encoding')
  ctx.lastModified = stats.mtime
  ctx.etag = `W/"${stats.size.toString(16)}-${Math.floor(stats.mtimeMs).toString(16)}"`
  if (ctx.fresh) {
    ctx.status = 304
    return
  }
  // Through an SSH tunnel the build's size is felt: text goes compressed, once per file.
  // Brotli where the client takes it (smaller), else gzip, whatever order it lists them in.
  const encoding = !COMPRESSIBLE.has(extension)
    ? 'identity'
    : ctx.acceptsEncodings('br') === 'br'
      ? 'br'
      : ctx.acceptsEncodings('gzip') === 'gzip'
        ? 'gzip'
        : 'identity'
  if (encoding === 'br' || encoding === 'gzip') {
    const body = compressedFile(real, stats, encoding)
    ctx.set('Content-Encoding', encoding)
    ctx.length = body.length
    if (ctx.method === 'HEAD') return
    ctx.body = body
    return
  }
  ctx.length = stats.size
  if (ctx.method === 'HEAD') return
  ctx.body = createReadStream(real)
}

/** The renderer build's hashed names (Vite: name-HASH.ext, 8 characters of hash). */
const HASHED_ASSET = /^\/assets\/[^/]+-[\w-]{8,}\.\w+$/

const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.map', '.svg'])

/** Compressed static files by path, size, time and encoding: the build does not change while served. */
const compressedFiles = new Map<string, Buffer>()

function compressedFile(path: string, stats: Stats, encoding: 'br' | 'gzip'): Buffer {
  const key = `${encoding}:${stats.size}:${stats.mtimeMs}:${path}`
  let body = compressedFiles.get(key)
  if (body === undefined) {
    const content = readFileSync(path)
    body =
      encoding === 'br'
        ? brotliCompressSync(content, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5 } })
        : gzipSync(content, { level: 6 })
    if (compressedFiles.size >= 64) compressedFiles.clear()
    compressedFiles.set(key, body)
  }
  return body
}
