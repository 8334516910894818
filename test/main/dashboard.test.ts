/**
 * The service with a live collector: file events while a real Koa app
 * writes, a monitor level that reaches the collector, and a file deleted or
 * replaced under the open connection.
 */
import Database from 'better-sqlite3'
import { copyFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SCHEMA_VERSION } from 'routemeter/schema'
import { afterEach, beforeAll, afterAll, describe, expect, test } from 'vitest'
import type { FileEvent } from '../../src-main/api/contract.js'
import { DashboardService } from '../../src-main/services/dashboard.js'
import { startCollectedApp, waitFor, type CollectedApp } from '../fixtures/collected-app.js'
import { buildMetricsFile, FIXTURE_NOW, tempDir } from '../fixtures/metrics-files.js'

const temp = tempDir()
const cleanups: Array<() => unknown> = []
let small: string
let larger: string

beforeAll(() => {
  small = buildMetricsFile(temp.dir, { name: 'small.db', requests: 2000, seed: 3 })
  larger = buildMetricsFile(temp.dir, { name: 'larger.db', requests: 4000, seed: 4 })
})
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})
afterAll(() => temp.cleanup())

function serviceWithEvents(): { service: DashboardService; events: FileEvent[] } {
  const service = new DashboardService({ now: () => FIXTURE_NOW, minChangedIntervalMs: 300 })
  const events: FileEvent[] = []
  service.onFileEvent((event) => events.push(event))
  cleanups.push(() => service.close())
  return { service, events }
}

async function collectedApp(path: string): Promise<CollectedApp> {
  const app = await startCollectedApp(path)
  cleanups.push(() => app.close())
  return app
}

function reader(path: string): Database.Database {
  const db = new Database(path, { readonly: true })
  cleanups.push(() => db.close())
  return db
}

test('no file open: every view answers NO_FILE', async () => {
  const service = new DashboardService({ watch: false })
  await expect(service.info({})).rejects.toMatchObject({ code: 'NO_FILE' })
  await expect(service.utilization({ from: 0, to: 1, utcOffsetMinutes: 0 })).rejects.toMatchObject({
    code: 'NO_FILE',
    message: expect.stringMatching(/No metrics file/),
  })
  await service.close()
})

test('opening a file announces it', async () => {
  const { service, events } = serviceWithEvents()
  const info = await service.openFile({ path: small })
  expect(events).toEqual([{ kind: 'opened', info }])
  expect(info).toMatchObject({ path: small, demo: true, schemaVersion: SCHEMA_VERSION })
})

describe('with a collector writing', () => {
  test('a commit reaches subscribers as "changed" within 2 s', async () => {
    const path = join(temp.dir, 'live.db')
    const app = await collectedApp(path)
    const { service, events } = serviceWithEvents()
    await service.openFile({ path })
    events.length = 0
    expect(await app.get('/api/items')).toBe(200)
    const committed = Date.now()
    app.collector.flush()
    await waitFor('a changed event', () => events.some((e) => e.kind === 'changed'), 2000)
    expect(Date.now() - committed).toBeLessThan(2500)
    const info = await service.info({})
    expect(info.requestCount).toBeGreaterThanOrEqual(1)
  })

  test('a busy collector does not flood subscribers', async () => {
    const path = join(temp.dir, 'busy.db')
    const app = await collectedApp(path)
    const { service, events } = serviceWithEvents()
    await service.openFile({ path })
    events.length = 0
    const started = Date.now()
    // A commit every ~30 ms for about a second.
    while (Date.now() - started < 1000) {
      await app.get('/api/items/1')
      app.collector.flush()
      await new Promise((resolve) => setTimeout(resolve, 30))
    }
    await waitFor('the last change', async () => (await service.info({})).requestCount > 10)
    const changed = events.filter((e) => e.kind === 'changed').length
    expect(changed).toBeGreaterThanOrEqual(1)
    // minChangedIntervalMs is 300: about four in a second, never one per commit.
    expect(changed).toBeLessThanOrEqual(6)
  })

  test('a monitor level set in the app stops and restarts the collector within 2.5 s', async () => {
    const path = join(temp.dir, 'levels.db')
    const app = await collectedApp(path)
    const db = reader(path)
    const endpointId = await waitFor('the discovered route', () => {
      app.collector.flush()
      return db
        .prepare("SELECT id FROM endpoint WHERE method = 'GET' AND route = '/api/items'")
        .pluck()
        .get() as number | undefined
    })
    const { service } = serviceWithEvents()
    await service.openFile({ path })
    const rows = (): number =>
      db
        .prepare('SELECT count(*) FROM request WHERE endpoint_id = ?')
        .pluck()
        .get(endpointId) as number
    const lastRequested = (): number =>
      (db.prepare('SELECT last_requested FROM endpoint WHERE id = ?').pluck().get(endpointId) as
        number | null) ?? 0

    /** One request, written: true when it left a request row (level ≥ 1). */
    const recorded = async (): Promise<boolean> => {
      const before = rows()
      const previous = lastRequested()
      // Requests in the same millisecond would not move last_requested.
      await waitFor('the clock to move', () => Date.now() > previous + 1)
      await app.get('/api/items')
      await waitFor('the request to be written', () => {
        app.collector.flush()
        return lastRequested() > previous
      })
      return rows() > before
    }

    expect(await recorded()).toBe(true)

    const endpoint = await service.setLevel({ endpointId, level: 0 })
    expect(endpoint).toMatchObject({ id: endpointId, level: 0, route: '/api/items' })
    const stoppedAt = Date.now()
    await waitFor('the collector to stop recording', async () => !(await recorded()), 2500)
    expect(Date.now() - stoppedAt).toBeLessThan(3000)
    expect(await recorded()).toBe(false)

    await service.setLevel({ endpointId, level: 1 })
    await waitFor('the collector to record again', () => recorded(), 2500)
    expect(await recorded()).toBe(true)
  })
})

describe('a file deleted or replaced while open', () => {
  function copyOf(source: string, name: string): string {
    const path = join(temp.dir, name)
    copyFileSync(source, path)
    return path
  }

  test('deleted: "deleted", the last data stays readable, levels cannot be saved', async () => {
    const path = copyOf(small, 'deleted.db')
    const { service, events } = serviceWithEvents()
    const info = await service.openFile({ path })
    rmSync(path)
    await waitFor('a deleted event', () => events.some((e) => e.kind === 'deleted'), 2500)
    expect(await service.info({})).toMatchObject({ requestCount: info.requestCount })
    await expect(service.setLevel({ endpointId: 1, level: 2 })).rejects.toMatchObject({
      code: 'FILE_MISSING',
      message: expect.stringContaining(path),
    })
    // The file comes back (a new copy): it is opened as a replacement.
    copyFileSync(larger, path)
    await waitFor('a replaced event', () => events.some((e) => e.kind === 'replaced'), 2500)
    expect((await service.info({})).requestCount).not.toBe(info.requestCount)
    expect(events.filter((e) => e.kind === 'deleted')).toHaveLength(1)
  })

  test('replaced by a rename: reopened and announced', async () => {
    const path = copyOf(small, 'renamed.db')
    const { service, events } = serviceWithEvents()
    const before = await service.openFile({ path })
    const next = copyOf(larger, 'next.db')
    renameSync(next, path)
    await waitFor('a replaced event', () => events.some((e) => e.kind === 'replaced'), 2500)
    const after = await service.info({})
    expect(after.path).toBe(path)
    expect(after.requestCount).not.toBe(before.requestCount)
    // The new file takes level changes.
    await service.setLevel({ endpointId: 2, level: 3 })
    const check = reader(path)
    expect(check.prepare('SELECT monitor_level FROM endpoint WHERE id = 2').pluck().get()).toBe(3)
  })

  test('replaced by something unreadable: one error event, the old data stays, then recovery', async () => {
    const path = copyOf(small, 'broken.db')
    const { service, events } = serviceWithEvents()
    const info = await service.openFile({ path })
    const text = join(temp.dir, 'notes.txt')
    writeFileSync(text, 'not a database\n')
    renameSync(text, path)
    const error = await waitFor(
      'an error event',
      () => events.find((e) => e.kind === 'error'),
      2500,
    )
    expect(error).toMatchObject({ kind: 'error', error: { code: 'NOT_SQLITE' } })
    expect((await service.info({})).requestCount).toBe(info.requestCount)
    // Checks go on; the same error is not repeated.
    service.check()
    service.check()
    expect(events.filter((e) => e.kind === 'error')).toHaveLength(1)
    renameSync(copyOf(larger, 'good-again.db'), path)
    await waitFor('a replaced event', () => events.some((e) => e.kind === 'replaced'), 2500)
  })
})

test('opening another file switches to it and stops reporting on the first', async () => {
  const first = copyOf2(small, 'first.db')
  const second = copyOf2(larger, 'second.db')
  const { service, events } = serviceWithEvents()
  await service.openFile({ path: first })
  await service.openFile({ path: second })
  expect(service.path).toBe(second)
  events.length = 0
  rmSync(first)
  const writer = new Database(second)
  writer.prepare("INSERT INTO user_group (name) VALUES ('someone-new')").run()
  writer.close()
  await waitFor('a changed event', () => events.some((e) => e.kind === 'changed'), 2500)
  expect(events.some((e) => e.kind === 'deleted')).toBe(false)
})

function copyOf2(source: string, name: string): string {
  const path = join(temp.dir, name)
  copyFileSync(source, path)
  return path
}

describe('outlier views', () => {
  const range = { from: 0, to: FIXTURE_NOW + 86_400_000, utcOffsetMinutes: 0 }

  test('a file without outliers answers empty pages, zero counts, and no outlier by id', async () => {
    const service = new DashboardService({ watch: false })
    cleanups.push(() => service.close())
    await service.openFile({ path: small })
    expect(await service.outliers(range)).toEqual({ total: 0, outliers: [] })
    const rows = await service.endpoints(range)
    expect(rows.length).toBeGreaterThan(0)
    expect(rows.every((row) => row.outliers === 0)).toBe(true)
    await expect(service.outlier({ id: 1 })).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
      message: 'there is no outlier with id 1 in this file',
    })
    const timeline = await service.outlierTimeline({ ...range, endpointId: rows[0]!.id })
    expect(timeline.outliers).toEqual([])
    expect(timeline.requestCount).toBe(rows[0]!.range.hits)
    expect(timeline.requests.length).toBe(Math.min(2000, timeline.requestCount))
  })

  test('a file of schema 5 (no outlier table) is read the same', async () => {
    const path = join(temp.dir, 'schema5.db')
    copyFileSync(small, path)
    const { downgrade } = await import('../fixtures/metrics-files.js')
    const db = new Database(path)
    downgrade(db, 5)
    db.close()
    const service = new DashboardService({ watch: false })
    cleanups.push(() => service.close())
    expect((await service.openFile({ path })).schemaVersion).toBe(5)
    expect(await service.outliers(range)).toEqual({ total: 0, outliers: [] })
    expect((await service.endpoints(range)).every((row) => row.outliers === 0)).toBe(true)
  })
})
