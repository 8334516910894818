/**
 * The collector's writer: how many rows a second MetricsStore takes; whether
 * a real bound app loses a row at 20,000 requests a second; and whether its
 * memory stays bounded when the file cannot take writes as fast as they come.
 */
import Database from 'better-sqlite3'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { generateMetricsFile } from '../../src-main/services/generator/index.js'
import { load, rssBytes, sleep, startServer } from './lib.js'

export interface WriterOptions {
  quick: boolean
  dir: string
  /** end of generated periods, fixed so that runs compare */
  end: number
  log: (line: string) => void
}

export interface StoreFigures {
  rows: number
  batchSize: number
  writeSeconds: number
  rowsPerSecond: number
  fileBytes: number
  bytesPerRow: number
}

export interface NoLossFigures {
  framework: string
  targetRate: number
  achievedRate: number
  seconds: number
  /** responses autocannon received, requests it sent */
  responses: number
  sent: number
  /** request rows in the file after the app stopped */
  rows: number
  /** responses without a row (0 means nothing was lost) */
  lost: number
  collector: Record<string, unknown>
  clientCpu: number
}

export interface SlowDiskFigures {
  framework: string
  rate: number
  achievedRate: number
  seconds: number
  maxBufferedRows: number
  /** share of the time another connection held the write lock */
  lockedShare: number
  baselineRss: number
  peakRss: number
  finalRss: number
  /** RSS every 250 ms during the locked phase, bytes */
  samples: number[]
  collector: Record<string, unknown>
}

export interface WriterFigures {
  store: StoreFigures
  noLoss: NoLossFigures
  slowDisk: SlowDiskFigures
}

/** Rows per second of MetricsStore.write, in batches of a collector at 20k req/s (250 ms). */
function storeThroughput(options: WriterOptions): StoreFigures {
  const path = join(options.dir, 'writer.db')
  const rows = options.quick ? 200_000 : 2_000_000
  const batchSize = 5000
  const summary = generateMetricsFile(path, {
    requests: rows,
    days: 30,
    end: options.end,
    batchSize,
    overwrite: true,
  })
  rmSync(path, { force: true })
  return {
    rows,
    batchSize,
    writeSeconds: summary.writeMs / 1000,
    rowsPerSecond: rows / (summary.writeMs / 1000),
    fileBytes: summary.fileBytes,
    bytesPerRow: summary.fileBytes / rows,
  }
}

function countRows(path: string): number {
  const db = new Database(path, { readonly: true })
  try {
    return (db.prepare('SELECT count(*) AS n FROM request').get() as { n: number }).n
  } finally {
    db.close()
  }
}

function removeDb(path: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
}

/** A Koa app with Routemeter at level 1 under 20,000 req/s: every response must have its row. */
async function noLoss(options: WriterOptions): Promise<NoLossFigures> {
  const framework = 'koa'
  const path = join(options.dir, 'no-loss.db')
  removeDb(path)
  const targetRate = 20_000
  const seconds = options.quick ? 2 : 10
  const server = await startServer(framework, 'routemeter-1', ['--db', path])
  let result
  let collector: Record<string, unknown>
  try {
    result = await load(server.url, { seconds, connections: 50, rate: targetRate })
  } finally {
    collector = await server.stop()
  }
  const rows = countRows(path)
  removeDb(path)
  return {
    framework,
    targetRate,
    achievedRate: result.rps,
    seconds,
    responses: result.responses,
    sent: result.sent,
    rows,
    lost: Math.max(0, result.responses - rows),
    collector,
    clientCpu: result.clientCpu,
  }
}

/**
 * The file is locked by another connection most of the time (a stand-in for
 * a disk slower than the traffic): the collector must keep at most
 * maxBufferedRows and drop the rest, so its memory stays bounded.
 */
async function slowDisk(options: WriterOptions): Promise<SlowDiskFigures> {
  const framework = 'koa'
  const path = join(options.dir, 'slow-disk.db')
  removeDb(path)
  const rate = 20_000
  const seconds = options.quick ? 2 : 15
  const maxBufferedRows = options.quick ? 20_000 : 100_000
  const holdMs = 1900
  const gapMs = 100
  const server = await startServer(framework, 'routemeter-1', [
    '--db',
    path,
    '--max-buffered',
    String(maxBufferedRows),
  ])
  const samples: number[] = []
  let collector: Record<string, unknown>
  let achievedRate: number
  let baselineRss: number
  let finalRss: number
  const locker = new Database(path, { timeout: 5000 })
  let locked = false
  let locking = false
  // Holds the write lock for holdMs, lets go for gapMs, until told to stop.
  const holdLock = async (): Promise<void> => {
    while (locking) {
      locker.exec('BEGIN IMMEDIATE')
      locked = true
      await sleep(holdMs)
      locker.exec('COMMIT')
      locked = false
      await sleep(gapMs)
    }
  }
  try {
    // Unlocked warm-up at the same rate: the memory of a collector that writes normally.
    await load(server.url, { seconds: 1, connections: 50, rate })
    baselineRss = rssBytes(server.pid)
    locking = true
    const lockHolder = holdLock()
    const sampler = setInterval(() => samples.push(rssBytes(server.pid)), 250)
    try {
      achievedRate = (await load(server.url, { seconds, connections: 50, rate })).rps
    } finally {
      clearInterval(sampler)
      locking = false
      await lockHolder
    }
    // Unlocked again: what is buffered gets written.
    await sleep(1500)
    finalRss = rssBytes(server.pid)
  } finally {
    if (locked) locker.exec('COMMIT')
    locker.close()
    collector = await server.stop()
    removeDb(path)
  }
  return {
    framework,
    rate,
    achievedRate,
    seconds,
    maxBufferedRows,
    lockedShare: holdMs / (holdMs + gapMs),
    baselineRss,
    peakRss: Math.max(...samples.filter((x) => Number.isFinite(x))),
    finalRss,
    samples,
    collector,
  }
}

export async function runWriter(options: WriterOptions): Promise<WriterFigures> {
  options.log('  MetricsStore rows/s…')
  const store = storeThroughput(options)
  options.log(`  ${Math.round(store.rowsPerSecond)} rows/s; 20,000 req/s through a bound Koa app…`)
  const lossFigures = await noLoss(options)
  options.log(
    `  ${Math.round(lossFigures.achievedRate)} req/s reached, ${lossFigures.lost} lost; a locked file…`,
  )
  const disk = await slowDisk(options)
  return { store, noLoss: lossFigures, slowDisk: disk }
}
