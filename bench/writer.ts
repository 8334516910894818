/**
 * The collector's writer: how many rows a second MetricsStore takes; whether
 * a real bound app loses a row at 20,000 requests a second; and whether its
 * memory stays bounded when the file cannot take writes as fast as they come.
 */
import Database from 'better-sqlite3'
import { spawn } from 'node:child_process'
import { rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { MetricsStore, type EndpointState, type PendingRequest } from 'routemeter/writer'
import { generateMetricsFile } from '../src-main/services/generator/index.js'
import { AliasTable, Random } from '../src-main/services/generator/random.js'
import { load, pinned, ROOT, rssBytes, SERVER_CORE, sleep, startServer } from './lib.js'
import type { WriterChildResult } from './writer-child.js'

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

/** `npm run generate` end to end: rows made, counted and written by the bulk writer thread. */
export interface GeneratorFigures {
  rows: number
  days: number
  seconds: number
  rowsPerSecond: number
  /** share of the generator's thread spent counting rollups or waiting for the writer thread */
  writerShare: number
}

export interface NoLossFigures {
  framework: string
  targetRate: number
  achievedRate: number
  seconds: number
  /** responses autocannon received, requests it sent */
  responses: number
  sent: number
  /** request rows in the file after the app stopped (fewer than requests: sampled) */
  rows: number
  /** requests the file counts (its rollups, sampled-away requests included) */
  counted: number
  /** responses the file does not count (0 means nothing was lost) */
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

/** MetricsStore on the same rows with fewer of the schema's indexes: where the write time goes. */
export interface ProfileFigures {
  variant: string
  /** indexes of the request table the file kept */
  indexes: string[]
  rows: number
  rowsPerSecond: number
  bytesPerRow: number
}

export interface WriterFigures {
  /** the collector's writer thread, in a process pinned to one core */
  thread: WriterChildResult
  store: StoreFigures
  generator: GeneratorFigures
  profile: ProfileFigures[]
  noLoss: NoLossFigures
  slowDisk: SlowDiskFigures
}

/**
 * Rows per second the collector's writer thread sustains (bench/writer-child.ts), in a
 * process pinned to the server's core: the thread shares it with the app's, as in the
 * overhead benchmark.
 */
function threadThroughput(options: WriterOptions): Promise<WriterChildResult> {
  const path = join(options.dir, 'writer-thread.db')
  removeDb(path)
  const rows = options.quick ? 200_000 : 2_000_000
  const [command, args] = pinned(SERVER_CORE, [
    process.execPath,
    '--import',
    'tsx',
    join(ROOT, 'bench', 'writer-child.ts'),
    path,
    String(rows),
  ])
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
  return new Promise((resolve, reject) => {
    child.once('close', (code) => {
      removeDb(path)
      if (code !== 0) reject(new Error(`writer-child failed (${code}): ${err}`))
      else resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as WriterChildResult)
    })
  })
}

/**
 * Rows per second of MetricsStore.write on one thread (the generator's
 * inline path), in batches of a collector at 20k req/s (250 ms).
 */
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
    thread: false,
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

/**
 * The generator as the issue runs it (`--requests 10000000 --days 365`): wall
 * time. The quick run keeps its traffic per day (the rollups' rows per
 * request depend on it) over a week.
 */
function generatorThroughput(options: WriterOptions): GeneratorFigures {
  const path = join(options.dir, 'generated.db')
  const rows = options.quick ? 200_000 : 10_000_000
  const days = options.quick ? 7 : 365
  const summary = generateMetricsFile(path, {
    requests: rows,
    days,
    end: options.end,
    overwrite: true,
  })
  removeDb(path)
  const seconds = summary.elapsedMs / 1000
  return {
    rows,
    days,
    seconds,
    rowsPerSecond: rows / seconds,
    writerShare: summary.writeMs / summary.elapsedMs,
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

/** Requests the file counts: its rollups, which count the rows sampled away too. */
function countRequests(path: string): number {
  const db = new Database(path, { readonly: true })
  try {
    return db.prepare('SELECT coalesce(sum(requests), 0) FROM rollup_day').pluck().get() as number
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
  const counted = countRequests(path)
  removeDb(path)
  return {
    framework,
    targetRate,
    achievedRate: result.rps,
    seconds,
    responses: result.responses,
    sent: result.sent,
    rows,
    counted,
    lost: Math.max(0, result.responses - counted),
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

/**
 * Writes the same synthetic rows through MetricsStore into files that keep
 * all, some or none of the request table's secondary indexes (dropped after
 * the store created the file). A diagnostic for the writer's design, not a
 * target.
 */
function writerProfile(options: WriterOptions): ProfileFigures[] {
  const rows = options.quick ? 100_000 : 1_000_000
  const batchSize = 5000
  const figures: ProfileFigures[] = []
  const variants: Array<[string, (names: string[]) => string[]]> = [
    ['the schema as it is', (names) => names],
    [
      'only (endpoint_id, time) and (time)',
      (names) => names.filter((n) => /endpoint_time$|_time$/.test(n)),
    ],
    ['only (endpoint_id, time)', (names) => names.filter((n) => n.endsWith('endpoint_time'))],
    ['no secondary index', () => []],
  ]
  for (const [variant, keep] of variants) {
    const path = join(options.dir, 'profile.db')
    removeDb(path)
    const store = new MetricsStore(path, { name: 'bench', source: 'option' }, options.end)
    const db = new Database(path)
    const all = (
      db
        .prepare(
          "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'request' AND sql IS NOT NULL",
        )
        .all() as Array<{ name: string }>
    ).map((r) => r.name)
    const kept = keep(all)
    for (const name of all) if (!kept.includes(name)) db.exec(`DROP INDEX "${name}"`)
    db.close()

    const random = new Random(42)
    const endpoints: EndpointState[] = Array.from({ length: 30 }, (_, i) => ({
      id: undefined,
      method: 'GET',
      route: `/api/r${i}/:id`,
      level: 1,
      pendingLastRequested: 0,
    }))
    const endpointTable = new AliasTable(endpoints.map((_, i) => (i + 1) ** -1.1))
    const users = Array.from({ length: 100 }, (_, i) => `user-${i}`)
    const userTable = new AliasTable(users.map(() => random.pareto(1.1)))
    let time = options.end - 30 * 86_400_000
    let writeMs = 0
    for (let done = 0; done < rows; done += batchSize) {
      const batch: PendingRequest[] = []
      for (let i = 0; i < batchSize; i++) {
        time += 1 + random.int(10)
        const user = userTable.pick(random)
        batch.push({
          endpoint: endpoints[endpointTable.pick(random)]!,
          time,
          durationUs: Math.round(20_000 * Math.exp(0.6 * random.normal())),
          status: random.next() < 0.03 ? 404 : 200,
          group: users[user]!,
          ip: `192.0.2.${1 + (user % 200)}`,
          aborted: 0,
        })
      }
      const t0 = performance.now()
      store.write(batch, [], [], time)
      writeMs += performance.now() - t0
    }
    store.close()
    figures.push({
      variant,
      indexes: kept,
      rows,
      rowsPerSecond: rows / (writeMs / 1000),
      bytesPerRow: statSync(path).size / rows,
    })
    removeDb(path)
  }
  return figures
}

export async function runWriter(options: WriterOptions): Promise<WriterFigures> {
  options.log('  the writer thread, rows/s…')
  const thread = await threadThroughput(options)
  options.log(`  ${Math.round(thread.rowsPerSecond)} rows/s; MetricsStore rows/s…`)
  const store = storeThroughput(options)
  options.log(`  ${Math.round(store.rowsPerSecond)} rows/s; the generator, a year of traffic…`)
  const generator = generatorThroughput(options)
  options.log(
    `  ${Math.round(generator.rowsPerSecond)} rows/s; where the write time goes (fewer indexes)…`,
  )
  const profile = writerProfile(options)
  options.log('  20,000 req/s through a bound Koa app…')
  const lossFigures = await noLoss(options)
  options.log(
    `  ${Math.round(lossFigures.achievedRate)} req/s reached, ${lossFigures.lost} lost; a locked file…`,
  )
  const disk = await slowDisk(options)
  return { thread, store, generator, profile, noLoss: lossFigures, slowDisk: disk }
}
