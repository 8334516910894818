import Database from 'better-sqlite3'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createDemoDatabase } from '../../src-main/services/demo.js'
import { MetricsConnection } from '../../src-main/services/database.js'
import { FIXTURE_NOW, tempDir } from '../fixtures/metrics-files.js'
import { SCHEMA_VERSION } from 'routemeter/schema'

const temp = tempDir()
let path: string
let db: Database.Database

beforeAll(() => {
  path = join(temp.dir, 'demo.db')
  createDemoDatabase(path, { now: FIXTURE_NOW })
  db = new Database(path, { readonly: true })
})
afterAll(() => {
  db.close()
  temp.cleanup()
})

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = (sorted.length - 1) / 2
  return (sorted[Math.floor(mid)]! + sorted[Math.ceil(mid)]!) / 2
}

function contentHash(file: string): string {
  const reader = new Database(file, { readonly: true })
  const hash = createHash('sha256')
  for (const table of ['endpoint', 'version', 'user_group', 'client_ip', 'request', 'meta']) {
    for (const row of reader.prepare(`SELECT * FROM ${table} ORDER BY 1`).raw().iterate()) {
      hash.update(JSON.stringify(row))
    }
  }
  reader.close()
  return hash.digest('hex')
}

test('the same seed and end give the same file content; another seed another', () => {
  const again = join(temp.dir, 'again.db')
  createDemoDatabase(again, { now: FIXTURE_NOW })
  expect(contentHash(again)).toBe(contentHash(path))
  const other = join(temp.dir, 'other.db')
  createDemoDatabase(other, { now: FIXTURE_NOW, seed: 2 })
  expect(contentHash(other)).not.toBe(contentHash(path))
})

test('never overwrites a file', () => {
  expect(() => createDemoDatabase(path)).toThrow(/exists already/)
})

test('is a valid Routemeter file, marked as the demo, ending at `now`', () => {
  const connection = MetricsConnection.open(path)
  expect(connection.schemaVersion).toBe(SCHEMA_VERSION)
  connection.close()
  const { first, last, n } = db
    .prepare('SELECT min(time) AS first, max(time) AS last, count(*) AS n FROM request')
    .get() as { first: number; last: number; n: number }
  expect(n).toBeGreaterThan(47_000)
  expect(n).toBeLessThan(53_000)
  expect(last).toBeLessThan(FIXTURE_NOW)
  expect(last).toBeGreaterThan(FIXTURE_NOW - 3_600_000)
  expect(first).toBeLessThan(FIXTURE_NOW - 29.9 * 86_400_000)
})

describe('looks like real traffic', () => {
  test('about a dozen endpoints, one at level 0 that still knows its last request', () => {
    const endpoints = db.prepare('SELECT * FROM endpoint').all() as Array<{
      id: number
      route: string
      monitor_level: number
      last_requested: number | null
    }>
    expect(endpoints.length).toBeGreaterThanOrEqual(12)
    const health = endpoints.find((e) => e.route === '/health')!
    expect(health.monitor_level).toBe(0)
    expect(health.last_requested).toBeGreaterThan(FIXTURE_NOW - 3_600_000)
    expect(
      db.prepare('SELECT count(*) FROM request WHERE endpoint_id = ?').pluck().get(health.id),
    ).toBe(0)
    expect(endpoints.some((e) => e.route.includes(':id'))).toBe(true)
  })

  test('three versions over the month; one makes search slower', () => {
    const versions = db.prepare('SELECT id, name FROM version ORDER BY first_seen').all() as Array<{
      id: number
      name: string
    }>
    expect(versions.map((v) => v.name)).toEqual(['1.4.0', '1.5.0', '1.5.1'])
    const search = db
      .prepare("SELECT id FROM endpoint WHERE route = '/api/products/search'")
      .pluck()
      .get() as number
    const durations = (versionId: number): number[] =>
      db
        .prepare(
          'SELECT duration_us FROM request WHERE endpoint_id = ? AND version_id = ? AND status = 200',
        )
        .pluck()
        .all(search, versionId) as number[]
    const [v140, v150, v151] = versions.map((v) => median(durations(v.id)))
    expect(v150! / v140!).toBeGreaterThan(1.5)
    expect(v151!).toBeLessThan(v150!)
  })

  test('users with very different loads; the slow endpoint depends on the user', () => {
    const loads = db
      .prepare(
        'SELECT g.name, count(*) AS n FROM request r JOIN user_group g ON g.id = r.user_group_id GROUP BY g.name ORDER BY n DESC',
      )
      .all() as Array<{ name: string; n: number }>
    expect(loads).toHaveLength(10)
    expect(loads[0]!.n / loads.at(-1)!.n).toBeGreaterThan(20)
    const recommendations = db
      .prepare(
        `SELECT g.name, r.duration_us AS d FROM request r JOIN user_group g ON g.id = r.user_group_id
         JOIN endpoint e ON e.id = r.endpoint_id WHERE e.route = '/api/users/:id/recommendations'`,
      )
      .all() as Array<{ name: string; d: number }>
    const byUser = (name: string): number =>
      median(recommendations.filter((r) => r.name === name).map((r) => r.d))
    expect(byUser('umbrella')).toBeGreaterThan(4 * byUser('wayne-enterprises'))
    expect(db.prepare('SELECT count(*) FROM client_ip').pluck().get()).toBeGreaterThanOrEqual(8)
  })

  test('a daily cycle, errors, skewed durations', () => {
    const byHour = db
      .prepare('SELECT (time / 3600000) % 24 AS hour, count(*) AS n FROM request GROUP BY hour')
      .all() as Array<{ hour: number; n: number }>
    const counts = byHour.map((h) => h.n)
    expect(Math.max(...counts) / Math.min(...counts)).toBeGreaterThan(3)
    const statuses = db.prepare('SELECT DISTINCT status FROM request').pluck().all() as number[]
    expect(statuses.some((s) => s >= 400 && s < 500)).toBe(true)
    expect(statuses.some((s) => s >= 500)).toBe(true)
    expect(statuses).toContain(0) // clients that left before the answer
    const durations = db.prepare('SELECT duration_us FROM request').pluck().all() as number[]
    const mean = durations.reduce((a, b) => a + b, 0) / durations.length
    expect(mean).toBeGreaterThan(1.5 * median(durations)) // a long right tail
  })
})
