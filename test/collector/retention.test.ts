/**
 * Retention and sampling on real files: a generated 60-day file pruned to 7
 * days with every view's totals unchanged, a size cap reached while a real
 * app serves, sampling at a high rate on a real Express app, two writers
 * pruning one file, a policy set from the desktop app reaching a running
 * collector, bad options, and a file written before schema 7.
 */
import Database from 'better-sqlite3'
import { execFileSync } from 'node:child_process'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import express from 'express'
import Koa from 'koa'
import { afterAll, describe, expect, it } from 'vitest'
import { bind, createCollector } from '../../collector/src/index.js'
import { SCHEMA_VERSION } from 'routemeter/schema'
import { MetricsStore } from 'routemeter/writer'
import { encodeProfile } from '../../collector/src/profiles/folded.js'
import { DashboardService } from '../../src-main/services/dashboard.js'
import { buildMetricsFile, downgrade, FIXTURE_NOW, scalar } from '../fixtures/metrics-files.js'
import {
  defer,
  errorSink,
  listen,
  makeTempDir,
  removeTempDirs,
  request,
  ROOT,
  tempDatabase,
  waitFor,
} from './helpers.js'

afterAll(removeTempDirs)

const DAY = 86_400_000
const VERSION = { name: 'retention-test', source: 'option' as const }

/** Runs a store's pruning to the end, as the writer thread does a little at a time. */
function pruneAll(store: MetricsStore, now: number): number {
  let steps = 0
  while (store.maintain(now, 20)) steps++
  return steps
}

function sizeOnDisk(path: string): number {
  const db = new Database(path)
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.close()
  return statSync(path).size
}

/** Every view's totals over [from, to) as the desktop app computes them. */
async function viewTotals(path: string, from: number, to: number): Promise<unknown> {
  const service = new DashboardService({ now: () => to, watch: false })
  await service.openFile({ path })
  try {
    const range = { from, to, utcOffsetMinutes: 0 }
    const overview = await service.endpoints(range)
    const performance = await service.performance(range)
    const utilization = await service.utilization(range)
    const heatmap = await service.hourHeatmap(range)
    const versions = await service.versionUtilization(range)
    const busiest = overview.slice().sort((a, b) => b.range.hits - a.range.hits)[0]!
    const users = await service.clients({ ...range, endpointId: busiest.id, kind: 'user' })
    return {
      overview: overview.map((row) => [
        row.route,
        row.range.hits,
        row.range.medianUs,
        row.range.p95Us,
      ]),
      performance: performance.map((box) => [box.endpointId, box.stats]),
      utilization: utilization.series.map((series) => series.counts.reduce((a, b) => a + b, 0)),
      heatmap: heatmap.counts,
      versions: versions,
      users: users.clients.map((client) => [client.name, client.stats.count, client.stats.median]),
    }
  } finally {
    await service.close()
  }
}

describe('retention', () => {
  it('refuses a bad retention or sampling option with a TypeError naming it', () => {
    const database = tempDatabase()
    expect(() => createCollector({ database, retention: { requests: '7 days' } } as never)).toThrow(
      /"retention.requests" must be a duration/,
    )
    expect(() => createCollector({ database, retention: { requests: '10m' } })).toThrow(
      /at least 1 hour/,
    )
    expect(() => createCollector({ database, retention: { maxFileSize: '2 gigs' } })).toThrow(
      /"retention.maxFileSize" must be a size/,
    )
    expect(() => createCollector({ database, retention: { rows: '1d' } } as never)).toThrow(
      /unknown option "retention.rows"/,
    )
    expect(() => createCollector({ database, sampling: { rowsPerSecond: 0 } })).toThrow(
      /"sampling.rowsPerSecond" must be a positive number/,
    )
    expect(() => createCollector({ database, retention: '30d' } as never)).toThrow(TypeError)
  })

  it('7 days on a 60-day file: no raw row older, rollups whole, every view the same, the file smaller', async () => {
    const dir = makeTempDir()
    const path = buildMetricsFile(dir, { days: 60, requests: 60_000 })
    const from = FIXTURE_NOW - 60 * DAY
    const before = await viewTotals(path, from, FIXTURE_NOW)
    const rollupDaysBefore = scalar(path, 'SELECT count(DISTINCT day) FROM rollup_day')
    const requestsBefore = scalar(path, 'SELECT sum(requests) FROM rollup_day')
    const sizeBefore = sizeOnDisk(path)
    expect(scalar(path, 'SELECT min(time) FROM request')).toBeLessThan(FIXTURE_NOW - 50 * DAY)

    const store = new MetricsStore(path, VERSION, FIXTURE_NOW, undefined, 'n', undefined, {
      retention: { requestsMs: 7 * DAY },
    })
    pruneAll(store, FIXTURE_NOW)
    store.close()

    expect(scalar(path, 'SELECT min(time) FROM request')).toBeGreaterThanOrEqual(
      FIXTURE_NOW - 7 * DAY,
    )
    expect(scalar(path, 'SELECT count(*) FROM request')).toBeGreaterThan(0)
    expect(scalar(path, 'SELECT count(DISTINCT day) FROM rollup_day')).toBe(rollupDaysBefore)
    expect(scalar(path, 'SELECT sum(requests) FROM rollup_day')).toBe(requestsBefore)
    expect(Number(scalar(path, "SELECT value FROM meta WHERE key = 'requests_kept_since'"))).toBe(
      FIXTURE_NOW - 7 * DAY,
    )
    // The range starts mid-hour, before the raw rows kept: its first hour is read whole, and
    // the generated requests start at the range's start, so the totals are the same.
    expect(await viewTotals(path, from, FIXTURE_NOW)).toEqual(before)
    expect(sizeOnDisk(path)).toBeLessThan(sizeBefore * 0.75)
    expect(scalar(path, 'PRAGMA integrity_check')).toBe('ok' as never)
  })

  it('level 3 profiles older than retention.profiles go, newer ones stay', () => {
    const path = buildMetricsFile(makeTempDir(), { days: 2, requests: 100 })
    const tree = encodeProfile({
      intervalUs: 5000,
      frames: [{ name: 'work', url: 'file:///app.js', line: 1 }],
      stacks: [[[0], 3]],
    })
    const hourNow = Math.floor(FIXTURE_NOW / 3_600_000)
    const db = new Database(path)
    const insert = db.prepare('INSERT INTO profile VALUES (1, ?, 1, 0, 3, 5000, ?)')
    for (const daysAgo of [40, 20, 2]) insert.run(hourNow - daysAgo * 24, tree)
    db.close()
    const store = new MetricsStore(path, VERSION, FIXTURE_NOW, undefined, 'n', undefined, {
      retention: { profilesMs: 10 * DAY },
    })
    pruneAll(store, FIXTURE_NOW)
    store.close()
    expect(scalar(path, 'SELECT count(*) FROM profile')).toBe(1)
    expect(scalar(path, 'SELECT hour FROM profile')).toBe(hourNow - 2 * 24)
  })

  it('a size cap reached while a Koa app serves: the oldest raw rows go, the app and the rollups go on', async () => {
    const dir = makeTempDir()
    // More than the cap, all recent enough that no age limit applies.
    const path = buildMetricsFile(dir, { days: 3, requests: 400_000, now: Date.now() })
    const requestsBefore = scalar(path, 'SELECT sum(requests) FROM rollup_day')
    const used = () =>
      scalar(
        path,
        'SELECT (page_count - freelist_count) * page_size FROM pragma_page_count, pragma_freelist_count, pragma_page_size',
      )
    expect(used()).toBeGreaterThan(10 * 1024 ** 2)
    const { errors, onError } = errorSink()
    const app = new Koa()
    const handle = bind(app, {
      database: path,
      flushInterval: 50,
      retention: { maxFileSize: '10MB' },
      sampling: false,
      onError,
    })
    app.use((ctx) => {
      ctx.body = 'ok'
    })
    const server = await listen(app)
    defer(() => server.close())
    defer(() => handle.close())
    // Rows go in while the cap is enforced (10 MB: the file is over it once these are in).
    const started = Date.now()
    const served: number[] = []
    for (let round = 0; round < 20; round++) {
      const replies = await Promise.all(
        Array.from({ length: 50 }, () => request(`${server.url}/items`)),
      )
      served.push(...replies.map((reply) => reply.status))
    }
    expect(served.every((status) => status === 200)).toBe(true)
    handle.flush()
    await waitFor('the file under its cap', () => used() <= 10 * 1024 ** 2, 20_000)
    expect(errors).toEqual([])
    // Every request still counted: the generated ones and the app's.
    expect(scalar(path, 'SELECT sum(requests) FROM rollup_day')).toBe(requestsBefore + 1000)
    // The oldest raw rows went first; the app's are all there.
    expect(scalar(path, `SELECT count(*) FROM request WHERE time >= ${started}`)).toBe(1000)
    expect(
      Number(scalar(path, "SELECT value FROM meta WHERE key = 'requests_kept_since'")),
    ).toBeGreaterThan(0)
  })

  it('sampling at a high rate: the rollups count every response, kept rows weigh the rest, errors all kept', async () => {
    const database = tempDatabase()
    const app = express()
    const { errors, onError } = errorSink()
    const handle = bind(app, {
      database,
      flushInterval: 100,
      sampling: { rowsPerSecond: 2 },
      onError,
    })
    app.get('/fast', (_req, res) => {
      res.send('ok')
    })
    app.get('/fail', (_req, res) => {
      res.status(500).send('no')
    })
    const server = await listen(app)
    defer(() => server.close())
    defer(() => handle.close())
    let fast = 0
    let failed = 0
    for (let round = 0; round < 40; round++) {
      const replies = await Promise.all([
        ...Array.from({ length: 48 }, () => request(`${server.url}/fast`)),
        request(`${server.url}/fail`),
        request(`${server.url}/fail`),
      ])
      fast += replies.filter((reply) => reply.status === 200).length
      failed += replies.filter((reply) => reply.status === 500).length
    }
    handle.flush()
    expect(errors).toEqual([])
    expect([fast, failed]).toEqual([1920, 80])
    const perRoute = (sql: string, route: string) =>
      scalar(
        database,
        sql.replaceAll('$ROUTE', `(SELECT id FROM endpoint WHERE route = '${route}')`),
      )
    expect(
      perRoute('SELECT sum(requests) FROM rollup_hour WHERE endpoint_id = $ROUTE', '/fast'),
    ).toBe(1920)
    expect(
      perRoute('SELECT sum(requests) FROM rollup_day WHERE endpoint_id = $ROUTE', '/fast'),
    ).toBe(1920)
    // Per IP: the rollup, plus the stored rows its watermark does not reach yet (as readers add them).
    expect(
      perRoute(
        `SELECT (SELECT sum(requests) FROM rollup_ip_day WHERE endpoint_id = $ROUTE)
              + (SELECT count(*) FROM request WHERE endpoint_id = $ROUTE AND id > coalesce(
                  (SELECT value FROM meta WHERE key = 'user_rollups_through_request'),
                  (SELECT value FROM meta WHERE key = 'rollups_through_request')))`,
        '/fast',
      ),
    ).toBe(1920)
    // A burst of 120 rows (a minute at 2 a second), then about 1 row a batch.
    const kept = perRoute('SELECT count(*) FROM request WHERE endpoint_id = $ROUTE', '/fast')
    expect(kept).toBeLessThan(1000)
    expect(kept).toBeGreaterThanOrEqual(120)
    expect(perRoute('SELECT sum(weight) FROM request WHERE endpoint_id = $ROUTE', '/fast')).toBe(
      1920,
    )
    expect(
      perRoute('SELECT count(*) FROM request WHERE endpoint_id = $ROUTE AND weight = 1', '/fail'),
    ).toBe(80)
    // The desktop app's views count the same from rollups and weighted rows.
    const service = new DashboardService({ watch: false })
    await service.openFile({ path: database })
    defer(() => service.close())
    const now = Date.now()
    const hourAgo = now - 3_600_000
    const rows = await service.endpoints({
      from: hourAgo + 1234,
      to: now + 60_000,
      utcOffsetMinutes: 0,
    })
    expect(rows.find((row) => row.route === '/fast')?.range.hits).toBe(1920)
    const timeline = await service.outlierTimeline({
      from: hourAgo,
      to: now + 60_000,
      utcOffsetMinutes: 0,
      endpointId: rows.find((row) => row.route === '/fast')!.id,
    })
    expect(timeline.sampled).toBe(true)
    expect(timeline.requestCount).toBe(1920)
  })

  it('two writers of one file prune it once between them, without blocking each other', () => {
    const dir = makeTempDir()
    const path = buildMetricsFile(dir, { days: 30, requests: 40_000 })
    const total = scalar(path, 'SELECT sum(requests) FROM rollup_day')
    const options = { retention: { requestsMs: 10 * DAY } }
    const a = new MetricsStore(path, VERSION, FIXTURE_NOW, undefined, 'a', undefined, options)
    const b = new MetricsStore(path, VERSION, FIXTURE_NOW, undefined, 'b', undefined, options)
    let rounds = 0
    // Interleaved as two processes' writer threads would run them.
    for (let step = 0; step < 10_000; step++) {
      const moreA = a.maintain(FIXTURE_NOW, 5)
      const moreB = b.maintain(FIXTURE_NOW, 5)
      if (step === 0) rounds = Number(moreA) + Number(moreB)
      if (!moreA && !moreB) break
    }
    a.close()
    b.close()
    // One took the round; the other found it taken.
    expect(rounds).toBeLessThanOrEqual(1)
    expect(scalar(path, 'SELECT min(time) FROM request')).toBeGreaterThanOrEqual(
      FIXTURE_NOW - 10 * DAY,
    )
    expect(scalar(path, 'SELECT sum(requests) FROM rollup_day')).toBe(total)
  })

  it('a policy set in the desktop app reaches a running collector, which prunes by it', async () => {
    const dir = makeTempDir()
    // Generated up to FIXTURE_NOW, weeks before today: a 7-day policy prunes every row.
    const path = buildMetricsFile(dir, { days: 10, requests: 5000 })
    const app = express()
    const handle = bind(app, {
      database: path,
      flushInterval: 50,
      retention: { requests: false },
    })
    app.get('/x', (_req, res) => {
      res.send('ok')
    })
    const server = await listen(app)
    defer(() => server.close())
    defer(() => handle.close())
    await request(`${server.url}/x`)
    handle.flush()
    const generated = scalar(path, 'SELECT count(*) FROM request WHERE time < ' + (FIXTURE_NOW + 1))
    expect(generated).toBeGreaterThan(4000)

    const service = new DashboardService({ watch: false })
    await service.openFile({ path })
    defer(() => service.close())
    const about = await service.setRetention({
      requestsMs: 7 * DAY,
      outliersMs: 7 * DAY,
      profilesMs: 7 * DAY,
      rollupsMs: null,
      maxFileSizeBytes: 100 * 1024 ** 2,
      sampleRowsPerSecond: null,
    })
    expect(about.policy).toMatchObject({ requestsMs: 7 * DAY, setBy: 'app' })
    await waitFor(
      'the generated rows pruned',
      () => scalar(path, 'SELECT count(*) FROM request WHERE time < ' + (FIXTURE_NOW + 1)) === 0,
      10_000,
    )
    // Today's request stays; the rollups keep the generated days.
    expect(scalar(path, 'SELECT count(*) FROM request')).toBe(1)
    expect(scalar(path, 'SELECT sum(requests) FROM rollup_day')).toBe(generated + 1)
    const shown = await service.aboutFile({})
    expect(shown.keptSince.requests).toBeGreaterThan(Date.now() - 7 * DAY - 60_000)
    expect(shown.tables.find((table) => table.name === 'request')?.rows).toBe(1)
    expect(shown.incrementalVacuum).toBe(true)
  })

  it('a file written before schema 7 is migrated and pruned; routemeter vacuum gives its space back', () => {
    const dir = makeTempDir()
    const path = buildMetricsFile(dir, { days: 30, requests: 30_000 })
    // Made as an older collector made it: no incremental vacuum, schema 6.
    const old = new Database(path)
    downgrade(old, 6)
    old.pragma('journal_mode = DELETE')
    old.pragma('auto_vacuum = NONE')
    old.exec('VACUUM')
    old.close()
    expect(scalar(path, 'PRAGMA auto_vacuum')).toBe(0)
    const total = scalar(path, 'SELECT sum(requests) FROM rollup_day')

    const store = new MetricsStore(path, VERSION, FIXTURE_NOW, undefined, 'n', undefined, {
      retention: { requestsMs: 3 * DAY },
    })
    pruneAll(store, FIXTURE_NOW)
    store.close()
    expect(scalar(path, 'PRAGMA user_version')).toBe(SCHEMA_VERSION)
    expect(scalar(path, 'SELECT min(time) FROM request')).toBeGreaterThanOrEqual(
      FIXTURE_NOW - 3 * DAY,
    )
    expect(scalar(path, 'SELECT sum(requests) FROM rollup_day')).toBe(total)
    const pruned = sizeOnDisk(path)
    // Pages freed, not given back: the file keeps its size until converted.
    expect(scalar(path, 'PRAGMA freelist_count')).toBeGreaterThan(100)

    const cli = join(ROOT, 'collector/dist/esm/cli.js')
    const out = execFileSync(process.execPath, [cli, 'vacuum', path], { encoding: 'utf8' })
    expect(out).toMatch(/MB -> .* MB/)
    expect(scalar(path, 'PRAGMA auto_vacuum')).toBe(2)
    expect(sizeOnDisk(path)).toBeLessThan(pruned * 0.6)
    expect(scalar(path, 'SELECT sum(requests) FROM rollup_day')).toBe(total)
    // Not a metrics file: refused, untouched.
    const other = join(dir, 'other.db')
    new Database(other).exec('CREATE TABLE t (x)')
    expect(() => execFileSync(process.execPath, [cli, 'vacuum', other], { stdio: 'pipe' })).toThrow(
      /another application/,
    )
  })
})
