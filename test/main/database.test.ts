import Database from 'better-sqlite3'
import { closeSync, copyFileSync, existsSync, openSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { ApiError, RangeArgs } from '../../src-main/api/contract.js'
import { callApi } from '../../src-main/api/dispatch.js'
import { DashboardService } from '../../src-main/services/dashboard.js'
import { MetricsConnection } from '../../src-main/services/database.js'
import { SCHEMA_VERSION } from 'routemeter/schema'
import {
  buildMetricsFile,
  downgrade,
  filesHash,
  FIXTURE_NOW,
  makeBadFile,
  tempDir,
  type BadFileKind,
} from '../fixtures/metrics-files.js'

const temp = tempDir()
let good: string
/** the fixture's month, in UTC+2 */
const range: RangeArgs = {
  from: FIXTURE_NOW - 31 * 86_400_000,
  to: FIXTURE_NOW,
  utcOffsetMinutes: 120,
}

beforeAll(() => {
  good = buildMetricsFile(temp.dir)
})
afterAll(() => temp.cleanup())

async function refusal(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise
  } catch (error) {
    return error as ApiError
  }
  throw new Error('expected the call to fail')
}

const cases: Array<[BadFileKind, ApiError['code'], RegExp]> = [
  ['missing', 'FILE_MISSING', /does not exist/],
  ['empty', 'FILE_EMPTY', /empty \(0 bytes\)/],
  ['text', 'NOT_SQLITE', /is a text file/],
  ['binary', 'NOT_SQLITE', /not an SQLite database/],
  ['truncated-mid-page', 'CORRUPT', /damaged/],
  ['truncated-pages', 'CORRUPT', /damaged .*header announces/],
  ['corrupt-pages', 'CORRUPT', /damaged/],
  ['other-app', 'OTHER_APP', /another application \(application_id 0x464f534f\)/],
  ['unmarked-sqlite', 'OTHER_APP', /another application/],
  ['blank-sqlite', 'FILE_EMPTY', /empty SQLite database/],
  [
    'too-new',
    'TOO_NEW',
    new RegExp(
      `newer Routemeter \\(file schema version 99; this app reads up to version ${SCHEMA_VERSION}\\)`,
    ),
  ],
]

describe('a file that is not a readable metrics file', () => {
  test.each(cases)('%s is refused with %s', async (kind, code, message) => {
    const path = makeBadFile(temp.dir, kind, good)
    const service = new DashboardService({ watch: false })
    const error = await refusal(service.openFile({ path }))
    expect(error.code).toBe(code)
    expect(error.message).toMatch(message)
    // The message names the file, so the person knows which one.
    expect(error.message).toContain(path)
    // Nothing was opened: the service still answers, with the reason the file was refused.
    const after = await refusal(service.info({}))
    expect(after.code).toBe(code)
    expect(after.message).toBe(error.message)
    await service.close()
  })

  test('a refused file leaves the open one open', async () => {
    const service = new DashboardService({ watch: false })
    const info = await service.openFile({ path: good })
    const bad = makeBadFile(temp.dir, 'text', good)
    expect((await refusal(service.openFile({ path: bad }))).code).toBe('NOT_SQLITE')
    expect(await service.info({})).toEqual(info)
    await service.close()
  })

  test('a folder is refused', async () => {
    const service = new DashboardService({ watch: false })
    const error = await refusal(service.openFile({ path: temp.dir }))
    expect(error).toMatchObject({ code: 'NOT_SQLITE', message: expect.stringMatching(/folder/) })
    await service.close()
  })
})

describe('reading never modifies the file', () => {
  test('every view leaves the bytes as they were', async () => {
    const path = buildMetricsFile(temp.dir, { name: 'untouched.db', requests: 5000 })
    const before = filesHash(path)
    const service = new DashboardService({ watch: false, now: () => FIXTURE_NOW })
    const info = await service.openFile({ path })
    const whole: RangeArgs = { ...range, from: info.firstRequest! }
    const endpointId = (await service.endpoints(whole))[0]!.id
    await service.info({})
    await service.utilization(whole)
    await service.hourHeatmap(whole)
    await service.performance(whole)
    await service.versionEvolution({ ...whole, endpointId })
    await service.versionUtilization(whole)
    await service.clients({ ...whole, endpointId, kind: 'user' })
    await service.clients({ ...whole, endpointId, kind: 'ip' })
    await service.nodeBreakdown(whole)
    await service.statusCodes(whole)
    await service.latestErrors(whole)
    await service.close()
    expect(filesHash(path)).toEqual(before)
  })

  test('the query connection is read-only', () => {
    const connection = MetricsConnection.open(good)
    expect(() => connection.db.exec('DELETE FROM request')).toThrow(/readonly/i)
    connection.close()
  })

  test('a WAL file is read while its -wal holds commits, and the -wal is left alone', () => {
    const path = buildMetricsFile(temp.dir, { name: 'wal.db', requests: 2000 })
    // A writer that stays open keeps its commits in the -wal, like a running collector.
    const writer = new Database(path)
    writer.pragma('wal_autocheckpoint = 0')
    writer.exec(
      "INSERT INTO user_group (name) VALUES ('late-user'); UPDATE endpoint SET monitor_level = 3 WHERE id = 1",
    )
    expect(existsSync(`${path}-wal`)).toBe(true)
    const before = filesHash(path)
    const connection = MetricsConnection.open(path)
    const name = connection.db
      .prepare("SELECT name FROM user_group WHERE name = 'late-user'")
      .pluck()
      .get()
    expect(name).toBe('late-user')
    connection.close()
    expect(before.wal).toBeDefined()
    expect(filesHash(path)).toEqual(before)
    writer.close()
  })

  test('a WAL file without its -shm is read when the folder is writable', () => {
    const path = buildMetricsFile(temp.dir, { name: 'no-shm.db', requests: 1000 })
    rmSync(`${path}-shm`, { force: true })
    const connection = MetricsConnection.open(path)
    expect(connection.db.prepare('SELECT count(*) FROM endpoint').pluck().get()).toBeGreaterThan(5)
    connection.close()
  })
})

/** Pages of a table or index, from SQLite's dbstat. */
function pagesOf(path: string, name: string): number[] {
  const db = new Database(path, { readonly: true })
  try {
    return db.prepare('SELECT pageno FROM dbstat WHERE name = ?').pluck().all(name) as number[]
  } finally {
    db.close()
  }
}

/** A copy of `good` with garbage over one page of `name` (by default its middle page). */
function damaged(name: string, copy: string, pick: 'middle' | 'last' = 'middle'): string {
  const path = join(temp.dir, copy)
  copyFileSync(good, path)
  const pages = pagesOf(path, name).sort((a, b) => a - b)
  expect(pages.length).toBeGreaterThan(0)
  const page = pages[pick === 'last' ? pages.length - 1 : Math.floor(pages.length / 2)]!
  const fd = openSync(path, 'r+')
  const garbage = Buffer.alloc(4096)
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) % 251
  writeSync(fd, garbage, 0, garbage.length, (page - 1) * 4096)
  closeSync(fd)
  return path
}

describe('the check on open', () => {
  test('a file up to fullCheckMaxBytes is checked whole: damage among the requests is refused', () => {
    const path = damaged('request', 'request-page.db')
    expect(() => MetricsConnection.open(path)).toThrow(/damaged \(SQLite's check says/)
  })

  test('a larger file opens without reading the request table; a query that meets the damage says so', async () => {
    const path = damaged('request', 'large-request-page.db')
    const service = new DashboardService({
      watch: false,
      fullCheckMaxBytes: 0,
      now: () => FIXTURE_NOW,
    })
    const info = await service.openFile({ path })
    expect(info.requestCount).toBeGreaterThan(0)
    // Rollups answer; the views read the requests of a range's partial hours. Hours from
    // half past to half past, over the month, read every request, and meet the garbage.
    expect((await service.performance(range)).length).toBeGreaterThan(0)
    const hours = Array.from({ length: 31 * 24 }, (_, h) => range.from + h * 3_600_000)
    const errors = await Promise.allSettled(
      hours.map((from) => service.performance({ ...range, from, to: from + 3_600_000 })),
    )
    const failed = errors.find((result) => result.status === 'rejected') as PromiseRejectedResult
    expect(failed.reason).toMatchObject({ code: 'CORRUPT' })
    await service.close()
  })

  test('a larger file whose latest requests are damaged opens, says it is damaged and names it; a view that meets the damage names it too', async () => {
    const path = damaged('request', 'large-latest-damaged.db', 'last')
    const service = new DashboardService({
      watch: false,
      fullCheckMaxBytes: 0,
      now: () => FIXTURE_NOW,
    })
    const info = await service.openFile({ path })
    expect(info.damaged).toContain(path)
    expect(info.damaged).toMatch(/is damaged .*malformed/)
    // The rollups still know the hour of the last request.
    const reader = new Database(good, { readonly: true })
    const lastHour =
      (reader.prepare('SELECT max(hour) FROM rollup_hour').pluck().get() as number) * 3_600_000
    const requests = reader.prepare('SELECT count(*) FROM request').pluck().get()
    reader.close()
    expect(info.lastRequest).toBeGreaterThanOrEqual(lastHour)
    expect(info.lastRequest).toBeLessThan(lastHour + 3_600_000)
    expect(info.requestCount).toBe(requests)
    // Whole hours come from the rollups; a minute of the last hour reads the damaged page.
    expect((await service.performance({ ...range, to: lastHour })).length).toBeGreaterThan(0)
    const failed = await service
      .performance({ ...range, from: lastHour, to: lastHour + 60_000 })
      .then(
        () => new Error('no error'),
        (error: unknown) => error,
      )
    expect(failed).toMatchObject({ code: 'CORRUPT' })
    expect((failed as Error).message).toContain(path)
    await service.close()
  })

  test('a larger file is still refused when the rollups are damaged', () => {
    const path = damaged('rollup_user_day', 'large-rollup-page.db')
    expect(() => MetricsConnection.open(path, { fullCheckMaxBytes: 0 })).toThrow(/damaged/)
  })
})

describe('a file older than schema 3 (no rollups)', () => {
  test('opens unchanged, answers as the same file with rollups, and counts rows written later', async () => {
    const old = join(temp.dir, 'schema-2.db')
    copyFileSync(good, old)
    const db = new Database(old)
    downgrade(db, 2)
    db.close()
    const before = filesHash(old)
    const current = new DashboardService({ watch: false, now: () => FIXTURE_NOW })
    const legacy = new DashboardService({ watch: false, now: () => FIXTURE_NOW })
    await current.openFile({ path: good })
    const info = await legacy.openFile({ path: old })
    expect(info.schemaVersion).toBe(2)
    for (const view of ['endpoints', 'utilization', 'performance', 'statusCodes'] as const) {
      expect(await legacy[view](range), view).toEqual(await current[view](range))
    }
    expect(filesHash(old)).toEqual(before)
    // A schema-2 collector goes on writing: the next query counts the new rows.
    const writer = new Database(old)
    writer
      .prepare(
        `INSERT INTO request (endpoint_id, time, duration_us, status, version_id, aborted)
         VALUES (1, ?, 1000, 500, 1, 0)`,
      )
      .run(FIXTURE_NOW - 1000)
    writer.close()
    expect((await legacy.info({})).requestCount).toBe(info.requestCount + 1)
    await current.close()
    await legacy.close()
  })
})

describe('a schema-3 file (no rollup_ip_day)', () => {
  test('opens unchanged, and its per-IP view counts the same requests from the request table', async () => {
    const old = join(temp.dir, 'schema-3.db')
    copyFileSync(good, old)
    const db = new Database(old)
    downgrade(db, 3)
    db.close()
    const before = filesHash(old)
    const current = new DashboardService({ watch: false, now: () => FIXTURE_NOW })
    const legacy = new DashboardService({ watch: false, now: () => FIXTURE_NOW })
    await current.openFile({ path: good })
    expect((await legacy.openFile({ path: old })).schemaVersion).toBe(3)
    const endpointId = (await current.endpoints(range))[0]!.id
    const ips = await current.clients({ ...range, endpointId, kind: 'ip' })
    expect(ips.available.length).toBeGreaterThan(1)
    expect((await legacy.clients({ ...range, endpointId, kind: 'ip' })).available).toEqual(
      ips.available,
    )
    expect(filesHash(old)).toEqual(before)
    await current.close()
    await legacy.close()
  })
})

describe('monitor level', () => {
  test('is written to the file and returned', async () => {
    const path = buildMetricsFile(temp.dir, { name: 'levels.db', requests: 1000 })
    const service = new DashboardService({ watch: false, now: () => FIXTURE_NOW })
    await service.openFile({ path })
    const endpoint = await service.setLevel({ endpointId: 2, level: 3 })
    expect(endpoint).toMatchObject({ id: 2, level: 3 })
    const check = new Database(path, { readonly: true })
    expect(check.prepare('SELECT monitor_level FROM endpoint WHERE id = 2').pluck().get()).toBe(3)
    check.close()
    const rows = await service.endpoints({ from: 0, to: FIXTURE_NOW, utcOffsetMinutes: 0 })
    expect(rows.find((row) => row.id === 2)?.level).toBe(3)
    await service.close()
  })

  test('of an unknown endpoint, or a bad level, is refused', async () => {
    const service = new DashboardService({ watch: false })
    await service.openFile({ path: good })
    expect(await refusal(service.setLevel({ endpointId: 999, level: 1 }))).toMatchObject({
      code: 'BAD_ARGUMENT',
      message: expect.stringMatching(/no endpoint with id 999/),
    })
    // A bad level is refused where the argument enters (callApi), before the service sees it.
    expect(await callApi(service, 'setLevel', { endpointId: 1, level: 4 })).toMatchObject({
      ok: false,
      error: { code: 'BAD_ARGUMENT' },
    })
    await service.close()
  })

  test('needs an open file', async () => {
    const service = new DashboardService({ watch: false })
    expect((await refusal(service.setLevel({ endpointId: 1, level: 1 }))).code).toBe('NO_FILE')
    await service.close()
  })
})

test('the bad-file fixtures are really bad and the good one good', () => {
  expect(() => MetricsConnection.open(join(temp.dir, 'missing.db'))).toThrow(/does not exist/)
  expect(MetricsConnection.open(good).schemaVersion).toBe(SCHEMA_VERSION)
})
