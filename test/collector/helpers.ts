/*
 * Shared helpers of the collector's tests: temp folders, real servers on
 * port 0, real HTTP requests, a second better-sqlite3 connection to read what
 * the collector wrote, and polling with a deadline instead of fixed sleeps.
 */
import { serve } from '@hono/node-server'
import Database from 'better-sqlite3'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { onTestFinished } from 'vitest'

/** The repository's root, /work/main. */
export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..')
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))

// ---------------------------------------------------------------- temp folders

const tempDirs: string[] = []

/** A new empty folder under the OS temp dir, removed by removeTempDirs(). */
export function makeTempDir(prefix = 'routemeter-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.push(dir)
  return dir
}

/** A path for a metrics file in a new temp folder (the file does not exist yet). */
export function tempDatabase(name = 'metrics.db'): string {
  return join(makeTempDir(), name)
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true })
}

/** Runs `fn` when the current test ends, pass or fail (last registered runs first). */
export function defer(fn: () => unknown): void {
  onTestFinished(async () => {
    await fn()
  })
}

// ---------------------------------------------------------------- time

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolveSleep) => setTimeout(resolveSleep, ms))

/**
 * Waits at least `ms` by the monotonic clock (a timer alone may fire a
 * fraction of a millisecond early by performance.now()).
 */
export async function sleepAtLeast(ms: number): Promise<void> {
  const start = performance.now()
  for (;;) {
    const left = ms - (performance.now() - start)
    if (left <= 0) return
    await sleep(Math.max(1, Math.ceil(left)))
  }
}

export { waitFor } from '../fixtures/wait.js'

// ---------------------------------------------------------------- servers

export interface Listening {
  server: Server
  port: number
  /** http://127.0.0.1:port */
  url: string
  close(): Promise<void>
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

async function listening(server: Server): Promise<Listening> {
  if (!server.listening) {
    await new Promise<void>((resolveListen, reject) => {
      server.once('listening', resolveListen)
      server.once('error', reject)
    })
  }
  const port = (server.address() as AddressInfo).port
  let closed: Promise<void> | undefined
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close() {
      closed ??= new Promise<void>((resolveClose) => {
        server.close(() => resolveClose())
        server.closeAllConnections()
      })
      return closed
    },
  }
}

/** The parts of a Fastify instance and a Hono app that starting them needs. */
interface FastifyLike {
  server: Server
  listen(options: { port: number; host: string }): Promise<unknown>
  close(): Promise<unknown>
}
interface HonoLike {
  fetch: (request: Request) => Response | Promise<Response>
  routes: unknown[]
}

/**
 * Starts an app on port 0 as its framework does: Koa and Express with their
 * own `app.listen(0, '127.0.0.1')` (which the collector wraps to discover
 * routes), Fastify with `listen({ port: 0 })`, Hono with @hono/node-server's
 * `serve`, a plain handler with http.createServer. The server is closed when
 * the test ends.
 */
export async function listen(app: unknown): Promise<Listening> {
  const candidate = app as Partial<FastifyLike & HonoLike> & {
    listen?: (...args: unknown[]) => unknown
  }
  let server: Server
  if (candidate.server !== undefined && typeof candidate.close === 'function') {
    const fastify = app as FastifyLike
    await fastify.listen({ port: 0, host: '127.0.0.1' })
    defer(() => fastify.close())
    server = fastify.server
  } else if (typeof candidate.fetch === 'function' && Array.isArray(candidate.routes)) {
    server = serve({
      fetch: candidate.fetch,
      port: 0,
      hostname: '127.0.0.1',
    }) as unknown as Server
  } else if (typeof candidate.listen === 'function') {
    server = candidate.listen(0, '127.0.0.1') as Server
  } else {
    server = createServer(app as Handler).listen(0, '127.0.0.1')
  }
  const running = await listening(server)
  defer(() => running.close())
  return running
}

// ---------------------------------------------------------------- requests

export interface Reply {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** One request over node:http on a fresh connection; resolves with the whole response. */
export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolveReply, reject) => {
    const req = httpRequest(
      url,
      { method: options.method ?? 'GET', headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', reject)
        res.on('end', () =>
          resolveReply({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        )
      },
    )
    req.on('error', reject)
    // A server that never answers fails the test quickly instead of at the test timeout.
    req.setTimeout(15_000, () => req.destroy(new Error(`no answer from ${url} in 15 s`)))
    req.end(options.body)
  })
}

/** What a client sees of a response, minus the Date header, to compare two servers' answers. */
export function visible(reply: Reply): {
  status: number
  headers: Record<string, unknown>
  body: string
} {
  const headers: Record<string, unknown> = { ...reply.headers }
  delete headers.date
  return { status: reply.status, headers, body: reply.body }
}

/**
 * Starts a request and destroys the socket as soon as the first body chunk
 * arrives; resolves when the socket is closed.
 */
export function requestAndAbort(url: string): Promise<{ status: number }> {
  return new Promise((resolveAbort, reject) => {
    const req = httpRequest(url, { agent: false }, (res) => {
      res.once('data', () => {
        req.destroy()
        resolveAbort({ status: res.statusCode ?? 0 })
      })
      res.on('error', () => undefined)
    })
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (!req.destroyed) reject(error)
    })
    req.end()
  })
}

// ---------------------------------------------------------------- the metrics file

/** A second connection to the metrics file, like the desktop app's; closed when the test ends. */
export function openDb(path: string, options: Database.Options = {}): Database.Database {
  const db = new Database(path, { fileMustExist: true, ...options })
  defer(() => {
    if (db.open) db.close()
  })
  return db
}

/** Runs `fn` on a short-lived connection to the file. */
export function withDb<T>(path: string, fn: (db: Database.Database) => T): T {
  const db = new Database(path, { fileMustExist: true })
  try {
    return fn(db)
  } finally {
    db.close()
  }
}

export interface RecordedRequest {
  method: string
  route: string
  time: number
  duration_us: number
  status: number
  version: string
  version_source: string
  group: string | null
  ip: string | null
  aborted: number
}

/** Every request row with its endpoint, version, group and IP, in insertion order. */
export function readRequests(path: string): RecordedRequest[] {
  return withDb(
    path,
    (db) =>
      db
        .prepare(
          `SELECT e.method, e.route, r.time, r.duration_us, r.status, v.name AS version,
                  v.source AS version_source, g.name AS "group", c.address AS ip, r.aborted
           FROM request r
           JOIN endpoint e ON e.id = r.endpoint_id
           JOIN version v ON v.id = r.version_id
           LEFT JOIN user_group g ON g.id = r.user_group_id
           LEFT JOIN client_ip c ON c.id = r.client_ip_id
           ORDER BY r.id`,
        )
        .all() as RecordedRequest[],
  )
}

export interface StoredEndpoint {
  id: number
  method: string
  route: string
  monitor_level: number
  first_seen: number
  last_requested: number | null
}

export function readEndpoints(path: string): StoredEndpoint[] {
  return withDb(
    path,
    (db) => db.prepare('SELECT * FROM endpoint ORDER BY id').all() as StoredEndpoint[],
  )
}

/** "METHOD route" of every endpoint, sorted. */
export function endpointKeys(path: string): string[] {
  return readEndpoints(path)
    .map((e) => `${e.method} ${e.route}`)
    .sort()
}

export function countRequests(path: string): number {
  return withDb(path, (db) => db.prepare('SELECT count(*) FROM request').pluck().get() as number)
}

/** Collects what a collector reports through onError. */
export function errorSink(): { errors: Error[]; onError: (error: Error) => void } {
  const errors: Error[] = []
  return { errors, onError: (error) => errors.push(error) }
}

// ---------------------------------------------------------------- the built package

let built = false

/** Newest modification time of the files below a folder (0 if it does not exist). */
function newestMtime(dir: string): number {
  if (!existsSync(dir)) return 0
  let newest = 0
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile())
      newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs)
  }
  return newest
}

/**
 * Builds collector/dist (ESM and CommonJS) when it is missing or older than
 * the sources. `npm test` builds it first, so a test run does not rebuild it
 * while other test files may be reading it.
 */
export function buildPackage(): void {
  if (built) return
  const collector = join(ROOT, 'collector')
  const dist = join(collector, 'dist')
  if (
    !existsSync(join(dist, 'cjs', 'package.json')) ||
    newestMtime(dist) < newestMtime(join(collector, 'src'))
  ) {
    execFileSync('npm', ['run', 'build', '-w', 'routemeter'], { cwd: ROOT, stdio: 'pipe' })
  }
  built = true
}
