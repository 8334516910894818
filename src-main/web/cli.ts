/**
 * Web mode's command line, as a function that tests can call:
 * `serve [metrics.db] [--port N] [--host H] [--static DIR] [--allow-open]`.
 * Without a file it generates the demo database in the OS temp folder.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { toApiError } from '../api/errors.js'
import { DashboardService } from '../services/dashboard.js'
import { createDemoDatabase } from '../services/demo.js'
import { startWebServer } from './server.js'

export const USAGE =
  'usage: serve [path/to/metrics.db] [--port N] [--host H] [--static DIR] [--allow-open]\n' +
  '  without a file, a generated demo database is shown'

export interface ServeOptions {
  /** the metrics file; undefined: the demo database */
  file: string | undefined
  host: string
  port: number
  staticDir: string
  allowOpen: boolean
}

/** Parses the arguments; throws an Error whose message is for the person who typed them. */
export function parseServeArgs(argv: readonly string[], defaultStaticDir: string): ServeOptions {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      static: { type: 'string' },
      'allow-open': { type: 'boolean' },
    },
  })
  if (positionals.length > 1) throw new Error('one metrics file at most')
  const port = values.port === undefined ? 0 : Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`--port must be a port number (0-65535), got "${values.port}"`)
  }
  const host = values.host ?? '127.0.0.1'
  if (host.trim() === '') throw new Error('--host must name an address, e.g. 127.0.0.1')
  return {
    file: positionals[0] === undefined ? undefined : resolve(positionals[0]),
    host,
    port,
    staticDir: resolve(values.static ?? defaultStaticDir),
    allowOpen: values['allow-open'] ?? false,
  }
}

/** Where web mode keeps its demo database. */
export function demoPath(): string {
  return join(tmpdir(), 'routemeter-demo', 'demo.db')
}

/**
 * Writes a fresh demo (a month ending now) next to the old one and renames
 * it over: a server already showing the old demo sees it replaced.
 */
export function refreshDemo(path = demoPath()): string {
  mkdirSync(join(path, '..'), { recursive: true })
  const fresh = `${path}.${process.pid}.tmp`
  rmSync(fresh, { force: true })
  createDemoDatabase(fresh)
  // A stale -wal next to the target would be replayed into the new file.
  for (const suffix of ['-wal', '-shm']) rmSync(path + suffix, { force: true })
  renameSync(fresh, path)
  return path
}

export interface RunningServe {
  url: string
  file: string
  stop(): Promise<void>
}

/** Opens the file (or the demo), starts the server and prints its URL on one line. */
export async function runServe(
  options: ServeOptions,
  log: (line: string) => void = console.log,
): Promise<RunningServe> {
  const file = options.file ?? refreshDemo()
  const service = new DashboardService()
  let refusal: string | undefined
  try {
    await service.openFile({ path: file })
  } catch (error) {
    // Serve anyway: the page says why the file was refused (the service keeps the reason),
    // and with --allow-open another file can be opened from it.
    refusal = toApiError(error).message
  }
  if (!existsSync(join(options.staticDir, 'index.html'))) {
    console.warn(`No renderer build in ${options.staticDir}: only the API is served.`)
  }
  const server = await startWebServer({
    service,
    host: options.host,
    port: options.port,
    staticDir: options.staticDir,
    allowOpen: options.allowOpen,
  })
  log(
    refusal === undefined
      ? `Routemeter is showing ${file} at ${server.url}`
      : `Routemeter cannot show ${file}: ${refusal} The page at ${server.url} says so too.`,
  )
  return {
    url: server.url,
    file,
    async stop() {
      await server.close()
      await service.close()
    },
  }
}
