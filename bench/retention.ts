/**
 * Retention's targets (issue 20):
 * - a year at 1,000 requests a second over 50 endpoints, with the default
 *   policy: the file's size and every view over the year. The year's rollups
 *   are written from a generated day's, scaled to the rate; the raw rows are
 *   what the policy keeps (the size cap binds first), generated, then the
 *   collector's pruner brings the file to its steady state;
 * - a bound Koa app at 10,000 requests a second: the writer thread's CPU
 *   with sampling on and off, and whether the rollups count every response;
 * - pruning a day of raw rows from a 10-million-request file: the longest
 *   time the pruner holds the write lock, and an app's p99 latency while its
 *   collector prunes against one with nothing to prune.
 */
import Database from 'better-sqlite3'
import { copyFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { MetricsStore } from 'routemeter/writer'
import { decodeHistogram, encodeHistogram } from 'routemeter/schema'
import { generateMetricsFile } from '../src-main/services/generator/index.js'
import { load, quantile, sleep, startServer, threadCpu, type LoadResult } from './lib.js'
import { runChild } from './viewer.js'
import type { ViewerChildResult } from './viewer-child.js'

const DAY = 86_400_000

export interface RetentionOptions {
  quick: boolean
  dir: string
  end: number
  log: (line: string) => void
}

export interface YearFigures {
  rawRows: number
  rollupDays: number
  /** the file after the collector's pruner ran with the default policy */
  fileBytes: number
  usedBytes: number
  views: ViewerChildResult
  buildSeconds: number
}

export interface RateFigures {
  config: string
  targetRate: number
  load: LoadResult
  /** CPU of every thread but the app's main one, as a share of a core (the writer thread's, at most) */
  writerShare: number
  mainShare: number
  /** responses the load generator got, warm-up included */
  responses: number
  rollupRequests: number
  storedRows: number
}

export interface PruneFigures {
  fileRequests: number
  deletedRows: number
  transactions: number
  maxHoldMs: number
  p99HoldMs: number
  seconds: number
  /** p99 latency of an app at 2,000/s while its collector prunes 20 of 30 days, and with nothing to prune, per round */
  p99DuringMs: number[]
  p99QuietMs: number[]
  /** rows still to prune when each window ended (0: pruning ended within it) */
  rowsLeftAfterWindow: number[]
  rps: number[]
}

export interface RetentionFigures {
  year: YearFigures
  rates: RateFigures[]
  prune: PruneFigures
}

function scalar(db: Database.Database, sql: string): number {
  return Number(db.prepare(sql).pluck().get() ?? 0)
}

function usedBytes(db: Database.Database): number {
  return scalar(
    db,
    'SELECT (page_count - freelist_count) * page_size FROM pragma_page_count, pragma_freelist_count, pragma_page_size',
  )
}

/** A year of rollups at `rate` requests a second, and raw rows as the default policy keeps them. */
async function yearFile(options: RetentionOptions, rate: number): Promise<YearFigures> {
  const started = performance.now()
  const path = join(options.dir, 'year.db')
  buildYearFile(path, options, rate)
  const check = new Database(path)
  check.pragma('wal_checkpoint(TRUNCATE)')
  const figures = {
    rawRows: scalar(check, 'SELECT count(*) FROM request'),
    rollupDays: scalar(check, 'SELECT count(DISTINCT day) FROM rollup_day'),
    usedBytes: usedBytes(check),
  }
  check.close()
  const fileBytes = statSync(path).size
  options.log('  retention: the views over the year…')
  const views = await runChild(path, { end: options.end, warmRuns: options.quick ? 2 : 5 })
  return { ...figures, fileBytes, views, buildSeconds: (performance.now() - started) / 1000 }
}

/**
 * Writes the year's file at `path`: raw rows generated over 14 days, the
 * rollups of the 351 days before them copied from the last whole day's,
 * scaled to `rate`, then the collector's pruner run with the default policy.
 */
export function buildYearFile(
  path: string,
  options: Pick<RetentionOptions, 'quick' | 'end' | 'log'>,
  rate: number,
): void {
  // About as many raw rows as the default 1 GB cap holds (43 bytes or so each); fewer when quick.
  const rawRows = options.quick ? 500_000 : 20_000_000
  options.log(`  retention: ${rawRows.toLocaleString('en')} raw rows over 14 days…`)
  generateMetricsFile(path, {
    requests: rawRows,
    days: 14,
    end: options.end,
    endpoints: 50,
    seed: 20,
  })
  const db = new Database(path)
  // The template: the last whole day's rollups, scaled to `rate` requests a second.
  const lastDay = Math.floor(options.end / DAY) - 1
  const perDay = scalar(db, `SELECT sum(requests) FROM rollup_day WHERE day = ${lastDay}`)
  const factor = (rate * 86_400) / perDay
  db.function('scaled', { deterministic: true }, (blob) => {
    const histogram = decodeHistogram(blob as Uint8Array)
    for (const [bucket, count] of histogram)
      histogram.set(bucket, Math.max(1, Math.round(count * factor)))
    return encodeHistogram(histogram)
  })
  const firstRawDay = Math.floor(options.end / DAY) - 14
  // A quick run writes a month: a smoke run of the same code, not the year.
  const days = options.quick ? 30 - 14 : 365 - 14
  options.log(`  retention: ${days} days of rollups at ${rate} requests a second…`)
  const copy = (
    table: string,
    unit: 'hour' | 'day',
    counts: string[],
    keys: string[],
    offset: string,
  ) => {
    const scaled = counts.map((c) => `CAST(round(${c} * ${factor}) AS INTEGER)`)
    const histogram = table === 'rollup_status' ? [] : ['min_us', 'max_us', 'scaled(histogram)']
    const columns = [
      ...keys,
      ...counts,
      ...(table === 'rollup_status' ? [] : ['min_us', 'max_us', 'histogram']),
    ]
    const select = keys.map((k) => (k === unit ? `${k} - ${offset}` : k))
    return db.prepare(
      `INSERT INTO ${table} (${columns.join(', ')})
       SELECT ${[...select, ...scaled, ...histogram].join(', ')} FROM ${table}
       WHERE ${unit} >= ? AND ${unit} < ?`,
    )
  }
  const hourCounts = ['requests', 'errors_4xx', 'errors_5xx', 'sum_us']
  const statements = [
    [
      copy(
        'rollup_hour',
        'hour',
        hourCounts,
        ['endpoint_id', 'hour', 'version_id', 'node_id'],
        '? * 24',
      ),
      24,
    ],
    [
      copy('rollup_day', 'day', hourCounts, ['endpoint_id', 'day', 'version_id', 'node_id'], '?'),
      1,
    ],
    [
      copy(
        'rollup_user_day',
        'day',
        ['requests', 'sum_us'],
        ['endpoint_id', 'day', 'user_group_id', 'version_id', 'node_id'],
        '?',
      ),
      1,
    ],
    [
      copy(
        'rollup_ip_day',
        'day',
        ['requests', 'sum_us'],
        ['endpoint_id', 'day', 'client_ip_id', 'version_id', 'node_id'],
        '?',
      ),
      1,
    ],
    [
      copy(
        'rollup_status',
        'hour',
        ['requests'],
        ['endpoint_id', 'hour', 'node_id', 'status'],
        '? * 24',
      ),
      24,
    ],
  ] as const
  db.transaction(() => {
    for (let back = 1; back <= days; back++) {
      const shift = lastDay - (firstRawDay - back)
      for (const [statement, unitsPerDay] of statements) {
        statement.run(shift, lastDay * unitsPerDay, (lastDay + 1) * unitsPerDay)
      }
    }
  })()
  db.close()
  // The collector's pruner, with the default policy, brings the file to its steady state.
  options.log('  retention: the pruner with the default policy…')
  const store = new MetricsStore(
    path,
    { name: 'bench', source: 'option' },
    options.end,
    undefined,
    'vm',
  )
  while (store.maintain(options.end, 200));
  store.close()
}

/** A bound Koa app at `rate` requests a second for `seconds`, sampling on (routemeter-1) or off. */
async function atRate(
  options: RetentionOptions,
  config: string,
  rate: number,
  seconds: number,
): Promise<RateFigures> {
  const database = join(options.dir, `rate-${config}.db`)
  rmSync(database, { force: true })
  const server = await startServer('koa', config, ['--db', database])
  try {
    const warmup = await load(server.url, { seconds: 1, connections: 50, rate })
    const before = threadCpu(server.pid)
    const at = performance.now()
    const result = await load(server.url, { seconds, connections: 50, rate })
    const after = threadCpu(server.pid)
    const elapsed = (performance.now() - at) / 1000
    await sleep(500)
    await server.stop()
    const db = new Database(database, { readonly: true })
    const figures: RateFigures = {
      config,
      targetRate: rate,
      load: result,
      responses: warmup.responses + result.responses,
      writerShare: (after.all - after.main - (before.all - before.main)) / elapsed,
      mainShare: (after.main - before.main) / elapsed,
      rollupRequests: scalar(db, 'SELECT sum(requests) FROM rollup_day'),
      storedRows: scalar(db, 'SELECT count(*) FROM request'),
    }
    db.close()
    return figures
  } finally {
    await server.stop()
  }
}

/** Pruning a day of raw rows: lock holds in-process, and an app's p99 while its collector prunes. */
async function pruning(options: RetentionOptions): Promise<PruneFigures> {
  const requests = options.quick ? 300_000 : 10_000_000
  const base = join(options.dir, 'prune.db')
  const now = Date.now()
  options.log(`  retention: ${requests.toLocaleString('en')} requests over 30 days to prune…`)
  generateMetricsFile(base, { requests, days: 30, end: now, seed: 21 })
  const fileRequests = requests

  // 1. The pruner's transactions, timed one by one (budget 0: one step a call).
  const timed = join(options.dir, 'prune-timed.db')
  copyFileSync(base, timed)
  const store = new MetricsStore(
    timed,
    { name: 'bench', source: 'option' },
    now,
    undefined,
    'vm',
    undefined,
    {
      retention: { requestsMs: 29 * DAY, rollupsMs: null, maxFileSizeBytes: null },
    },
  )
  const rowsBefore = (() => {
    const db = new Database(timed, { readonly: true })
    const n = scalar(db, 'SELECT count(*) FROM request')
    db.close()
    return n
  })()
  const holds: number[] = []
  const t0 = performance.now()
  for (;;) {
    const t = performance.now()
    const more = store.maintain(now, 0)
    holds.push(performance.now() - t)
    if (!more) break
  }
  const seconds = (performance.now() - t0) / 1000
  store.close()
  const db = new Database(timed, { readonly: true })
  const deletedRows = rowsBefore - scalar(db, 'SELECT count(*) FROM request')
  db.close()
  holds.sort((a, b) => a - b)

  // 2. An app whose collector prunes while it serves, against one with nothing to prune. A
  // day goes in a fraction of a second; 20 of the 30 days (a policy tightened) keep the
  // collector pruning, then vacuuming, through most of the window. Alternated, a few rounds.
  const rate = 2000
  const window = options.quick ? 3 : 20
  const rounds = options.quick ? 1 : 3
  const policy = JSON.stringify({ requests: '10d', maxFileSize: false })
  const during: LoadResult[] = []
  const quiet: LoadResult[] = []
  const left: number[] = []
  for (let round = 0; round < rounds; round++) {
    const path = join(options.dir, 'prune-during.db')
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
    copyFileSync(base, path)
    const pruning = await startServer('koa', 'routemeter-1', ['--db', path, '--retention', policy])
    during.push(await load(pruning.url, { seconds: window, connections: 20, rate }))
    await pruning.stop()
    const check = new Database(path, { readonly: true })
    left.push(scalar(check, `SELECT count(*) FROM request WHERE time < ${now - 10 * DAY}`))
    check.close()
    const idle = await startServer('koa', 'routemeter-1', ['--db', path, '--retention', policy])
    quiet.push(await load(idle.url, { seconds: window, connections: 20, rate }))
    await idle.stop()
  }
  return {
    fileRequests,
    deletedRows,
    transactions: holds.length,
    maxHoldMs: holds[holds.length - 1] ?? 0,
    p99HoldMs: quantile(holds, 0.99),
    seconds,
    p99DuringMs: during.map((r) => r.p99),
    p99QuietMs: quiet.map((r) => r.p99),
    rowsLeftAfterWindow: left,
    rps: [...during, ...quiet].map((r) => r.rps),
  }
}

export async function runRetention(options: RetentionOptions): Promise<RetentionFigures> {
  const year = await yearFile(options, 1000)
  const rates: RateFigures[] = []
  for (const config of ['routemeter-1', 'routemeter-1-unsampled']) {
    options.log(`  retention: koa ${config} at 10,000 requests a second…`)
    rates.push(await atRate(options, config, 10_000, options.quick ? 2 : 20))
  }
  const prune = await pruning(options)
  return { year, rates, prune }
}
