import Database from 'better-sqlite3'
import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { ApiError, RangeArgs } from '../../src-main/api/contract.js'
import { DashboardService } from '../../src-main/services/dashboard.js'
import { MetricsConnection } from '../../src-main/services/database.js'
import { SCHEMA_VERSION } from 'routemeter/schema'
import {
  buildMetricsFile,
  filesHash,
  FIXTURE_NOW,
  makeBadFile,
  tempDir,
  type BadFileKind,
} from '../fixtures/metrics-files.js'

const temp = tempDir()
let good: string

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
    const range: RangeArgs = { from: info.firstRequest!, to: FIXTURE_NOW, utcOffsetMinutes: 120 }
    const endpointId = (await service.endpoints(range))[0]!.id
    await service.info({})
    await service.utilization(range)
    await service.hourHeatmap(range)
    await service.performance(range)
    await service.versionEvolution({ ...range, endpointId })
    await service.versionUtilization(range)
    await service.clients({ ...range, endpointId, kind: 'user' })
    await service.clients({ ...range, endpointId, kind: 'ip' })
    await service.statusCodes(range)
    await service.latestErrors(range)
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
    expect(
      (await refusal(service.setLevel({ endpointId: 1, level: 4 as unknown as 0 }))).code,
    ).toBe('BAD_ARGUMENT')
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
