/**
 * Web mode's command line, as a function that tests can call:
 * `serve [metrics.db] [--port N] [--host H] [--static DIR] [--allow-open]`.
 * Without a file it generates the demo database in the OS temp folder.
 */
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { toApiError } from '../api/errors.js'
import { DashboardService } from '../services/dashboard.js'
import { createDemoDatabase } from '../services/demo.js'
import { SourcesService } from '../services/sources/service.js'
import { startWebServer } from './server.js'

export const USAGE =
  'usage: serve [path/to/metrics.db] [--port N] [--host H] [--static DIR] [--allow-open]\n' +
  '             [--allow-remote] [--data-dir DIR]\n' +
  '  without a file, a generated demo database is shown\n' +
  '  --allow-remote: let the browser add servers and pull their metrics (outgoing requests)\n' +
  '  --data-dir: where pulled copies and merged files go (default: a private folder in the OS\n' +
  '              temp folder, removed on exit)'

export interface ServeOptions {
  /** the metrics file; undefined: the demo database */
  file: string | undefined
  host: string
  port: number
  staticDir: string
  allowOpen: boolean
  /** the browser may add servers: this process then makes outgoing requests; default false */
  allowRemote?: boolean
  /** pulled copies and merged datasets; default a folder in the OS temp folder */
  dataDir?: string
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
      'allow-remote': { type: 'boolean' },
      'data-dir': { type: 'string' },
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
    ...(values['allow-remote'] === true ? { allowRemote: true } : {}),
    ...(values['data-dir'] === undefined ? {} : { dataDir: resolve(values['data-dir']) }),
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
  // Servers and their tokens live in memory only in web mode; pulled copies in a folder of
  // this process's own (mode 700), removed when it stops or exits.
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'routemeter-web-'))
  const removeDataDir = (): void => {
    if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true })
  }
  process.on('exit', removeDataDir)
  const sources = new SourcesService({
    files: service,
    dataDir,
    remoteAllowed: options.allowRemote ?? false,
    openAllowed: options.allowOpen,
  })
  const server = await startWebServer({
    service,
    sources,
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
      await sources.close()
      await service.close()
      // Copies pulled into the default folder go with the server, like the tokens.
      removeDataDir()
      process.removeListener('exit', removeDataDir)
    },
  }
}
