/**
 * What the benchmarks share: processes pinned to a core, autocannon runs,
 * per-thread CPU time from /proc, statistics and tables.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const SERVER = join(ROOT, 'bench', 'server.mjs')
const require = createRequire(import.meta.url)

/** Core of the server under test, and of the load generator. */
export const SERVER_CORE = 0
export const CLIENT_CORE = 1

const hasTaskset = spawnSync('taskset', ['-p', String(process.pid)]).status === 0
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100

/** The command line to run `args` pinned to `core` (unpinned where taskset is missing). */
export function pinned(core: number, args: string[]): [string, string[]] {
  if (!hasTaskset || cpus().length < 2) return [args[0]!, args.slice(1)]
  return ['taskset', ['-c', String(core), ...args]]
}

export function pinningNote(): string {
  if (!hasTaskset) return 'not pinned: taskset is missing'
  if (cpus().length < 2) return 'not pinned: one core'
  return `server on core ${SERVER_CORE}, load generator on core ${CLIENT_CORE} (taskset)`
}

export const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms))

export interface Server {
  child: ChildProcess
  pid: number
  url: string
  /** SIGTERM; resolves with the `stats` line the server printed */
  stop(): Promise<Record<string, unknown>>
}

/** Starts bench/server.mjs pinned to the server core; resolves once it listens. */
export function startServer(
  framework: string,
  config: string,
  extra: string[] = [],
  /** a command that runs node (valgrind …), node's own flags, how long the server may take to listen */
  {
    wrap = [],
    nodeFlags = [],
    listenTimeoutMs = 20_000,
  }: { wrap?: string[]; nodeFlags?: string[]; listenTimeoutMs?: number } = {},
): Promise<Server> {
  const [command, args] = pinned(SERVER_CORE, [
    ...wrap,
    process.execPath,
    ...nodeFlags,
    SERVER,
    framework,
    config,
    ...extra,
  ])
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  let stats: Record<string, unknown> = {}
  // 'close', not 'exit': the stats line may still be in the pipe when the process exits.
  const exited = new Promise<void>((done) => child.once('close', () => done()))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(
        new Error(
          `${framework} ${config} did not listen within ${listenTimeoutMs / 1000} s: ${stderr}`,
        ),
      )
    }, listenTimeoutMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${framework} ${config} exited (${code}) before listening: ${stderr}`))
    })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const port = /^listening (\d+)$/.exec(line)?.[1]
      if (line.startsWith('stats ')) stats = JSON.parse(line.slice('stats '.length)) as typeof stats
      if (port === undefined) return
      clearTimeout(timer)
      resolve({
        child,
        // taskset execs node (or valgrind, which runs node in its own process): the pid is the server's
        pid: child.pid!,
        url: `http://127.0.0.1:${port}/`,
        stop: async () => {
          let kill: NodeJS.Timeout | undefined
          if (child.exitCode === null && child.signalCode === null) {
            kill = setTimeout(() => child.kill('SIGKILL'), 10_000)
            child.kill('SIGTERM')
          }
          await exited
          clearTimeout(kill)
          return stats
        },
      })
    })
  })
}

export interface LoadResult {
  /** responses per second over the run */
  rps: number
  responses: number
  sent: number
  non2xx: number
  errors: number
  /** ms, as autocannon measures them (1 ms resolution) */
  p50: number
  p99: number
  seconds: number
  /** share of one core the load generator used (near 1 = it may be the bottleneck) */
  clientCpu: number
}

interface AutocannonJson {
  requests: { total: number; sent: number }
  latency: { p50: number; p99: number }
  duration: number
  non2xx: number
  errors: number
  timeouts: number
}

/** Runs autocannon against `url`, pinned to the client core. */
export function load(
  url: string,
  /** `amount`: that many requests, however long they take (else for `seconds`) */
  options: { seconds?: number; amount?: number; connections: number; rate?: number },
): Promise<LoadResult> {
  const bin = join(dirname(require.resolve('autocannon/package.json')), 'autocannon.js')
  const args = [
    process.execPath,
    bin,
    '--json',
    '-c',
    String(options.connections),
    ...(options.amount === undefined
      ? ['-d', String(options.seconds ?? 10)]
      : ['-a', String(options.amount)]),
    ...(options.rate === undefined ? [] : ['-R', String(options.rate)]),
    url,
  ]
  const [command, rest] = pinned(CLIENT_CORE, args)
  const child = spawn(command, rest, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
  // The client's CPU use, sampled while it runs (its /proc entry goes when it exits).
  const started = performance.now()
  let first: { cpu: number; at: number } | undefined
  let last: { cpu: number; at: number } | undefined
  const poll = setInterval(() => {
    const cpu = processCpu(child.pid!)
    const at = performance.now()
    if (!Number.isFinite(cpu) || at - started < 300) return
    if (first === undefined) first = { cpu, at }
    else last = { cpu, at }
  }, 100)
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      clearInterval(poll)
      if (code !== 0) {
        reject(new Error(`autocannon exited with ${code}: ${err}`))
        return
      }
      const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as AutocannonJson
      resolve({
        rps: r.requests.total / r.duration,
        responses: r.requests.total,
        sent: r.requests.sent,
        non2xx: r.non2xx,
        errors: r.errors + r.timeouts,
        p50: r.latency.p50,
        p99: r.latency.p99,
        seconds: r.duration,
        clientCpu:
          first === undefined || last === undefined
            ? Number.NaN
            : (last.cpu - first.cpu) / ((last.at - first.at) / 1000),
      })
    })
  })
}

/** CPU seconds (user + system) of every thread of a process. */
export function processCpu(pid: number): number {
  try {
    return statCpu(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return Number.NaN
  }
}

function statCpu(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}

/** CPU seconds of a process's main thread and of all its threads. */
export function threadCpu(pid: number): { main: number; all: number } {
  let all = 0
  let main = 0
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const seconds = statCpu(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'))
      all += seconds
      if (tid === String(pid)) main = seconds
    }
  } catch {
    return { main: Number.NaN, all: Number.NaN }
  }
  return { main, all }
}

/** Resident memory of a process in bytes (from /proc). */
export function rssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? Number.NaN : Number(match[1]) * 1024
  } catch {
    return Number.NaN
  }
}

function newestMtime(path: string): number {
  const stats = statSync(path)
  if (!stats.isDirectory()) return stats.mtimeMs
  let newest = stats.mtimeMs
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)))
  return newest
}

/** The servers require the built package ('routemeter' -> collector/dist): build it when stale. */
export function ensureCollectorBuilt(log: (line: string) => void): void {
  const built = join(ROOT, 'collector', 'dist', 'cjs', 'index.js')
  const source = newestMtime(join(ROOT, 'collector', 'src'))
  if (existsSync(built) && statSync(built).mtimeMs >= source) return
  log('building the collector (collector/dist)…')
  const result = spawnSync(process.execPath, [join(ROOT, 'collector', 'scripts', 'build.mjs')], {
    cwd: join(ROOT, 'collector'),
    stdio: 'inherit',
  })
  if (result.status !== 0) throw new Error('the collector did not build')
}

// ---- statistics ----

export function quantile(values: readonly number[], q: number): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const position = (sorted.length - 1) * q
  const low = Math.floor(position)
  const high = Math.ceil(position)
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low)
}

export const median = (values: readonly number[]): number => quantile(values, 0.5)

/** Median with the smallest and largest value, for "x (min-max)". */
export interface Spread {
  median: number
  min: number
  max: number
  n: number
}

export function spread(values: readonly number[]): Spread {
  const finite = values.filter((v) => Number.isFinite(v))
  return {
    median: median(finite),
    min: finite.length === 0 ? Number.NaN : Math.min(...finite),
    max: finite.length === 0 ? Number.NaN : Math.max(...finite),
    n: finite.length,
  }
}

// ---- formatting ----

export function fixed(value: number, digits = 0): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '-'
}

export function percent(ratio: number): string {
  return Number.isFinite(ratio) ? `${(ratio * 100).toFixed(0)}%` : '-'
}

export function bytes(n: number): string {
  if (!Number.isFinite(n)) return '-'
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`
  return `${(n / 1024).toFixed(0)} KiB`
}

/** A plain-text table, columns aligned (numbers to the right). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const numeric = header.map((_, i) =>
    rows.every((r) => /^[-+\d.,%µ×x ()–/<>=~]*$/.test(r[i] ?? '')),
  )
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (numeric[i] && i > 0 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

/** A target beside its figure: `met` is undefined when it could not be measured. */
export interface TargetResult {
  target: string
  figure: string
  met: boolean | undefined
  note?: string
}

export function targetLine(t: TargetResult): string[] {
  const verdict = t.met === undefined ? 'n/a' : t.met ? 'met' : 'MISSED'
  return [t.target, t.figure, verdict, t.note ?? '']
}

// ---- the machine ----

function packageVersion(name: string): string {
  try {
    const path = join(ROOT, 'node_modules', name, 'package.json')
    return existsSync(path)
      ? (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version
      : 'missing'
  } catch {
    return 'unknown'
  }
}

export function machine(): Record<string, unknown> {
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' })
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'collector/src'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
  const Database = require('better-sqlite3') as typeof import('better-sqlite3')
  const memory = new Database(':memory:')
  const sqlite = memory.prepare('SELECT sqlite_version() AS v').get() as { v: string }
  memory.close()
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    loadAverageAtStart: loadavg().map((x) => Number(x.toFixed(2))),
    pinning: pinningNote(),
    commit: `${git.stdout.trim()}${dirty.stdout.trim() === '' ? '' : ' (collector/src modified)'}`,
    sqlite: sqlite.v,
    versions: Object.fromEntries(
      [
        'routemeter',
        'better-sqlite3',
        'express',
        'koa',
        '@koa/router',
        'autocannon',
        'express-prom-bundle',
        'prom-client',
        'swagger-stats',
        'express-status-monitor',
        '@opentelemetry/sdk-metrics',
        '@opentelemetry/instrumentation-http',
        '@opentelemetry/instrumentation-express',
        '@opentelemetry/instrumentation-koa',
      ].map((name) => [name, packageVersion(name)]),
    ),
  }
}
