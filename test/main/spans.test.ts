/**
 * Schema 5 finds the requests of a range's ends through rollup_hour's id
 * spans instead of an index on (endpoint_id, time). Requests are not written
 * in time order: two processes interleave their batches, and a request that
 * started in an earlier hour (a long one, or one a writer kept while the
 * file was locked) is written after later ones. Every range, cut anywhere,
 * must still count exactly the requests an independent query counts.
 */
import Database from 'better-sqlite3'
import { MetricsStore, type EndpointState, type PendingRequest } from 'routemeter/writer'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { DashboardService } from '../../src-main/services/dashboard.js'
import { mergeSpans } from '../../src-main/services/views/sqlite-reader.js'
import { tempDir } from '../fixtures/metrics-files.js'

const HOUR = 3_600_000
const START = Date.UTC(2026, 10, 2, 9, 0)
const temp = tempDir()
let path: string
let service: DashboardService
let reference: Database.Database

function endpoint(route: string): EndpointState {
  return { id: undefined, method: 'GET', route, level: 1, pendingLastRequested: 0 }
}

beforeAll(async () => {
  path = `${temp.dir}/spans.db`
  const a = new MetricsStore(path, { name: '1.0.0', source: 'option' }, START, undefined, 'web-1')
  const b = new MetricsStore(path, { name: '1.0.0', source: 'option' }, START, undefined, 'web-2')
  const endpoints = [endpoint('/a'), endpoint('/b'), endpoint('/c')]
  const batch = (first: number, count: number, step: number, late = 0): PendingRequest[] =>
    Array.from({ length: count }, (_, i) => ({
      endpoint: endpoints[(first + i) % 3]!,
      // Every 7th request started `late` ms before its neighbours.
      time: first * step + i * step + START - (i % 7 === 0 ? late : 0),
      durationUs: 1000 + ((first + i) % 50) * 100,
      status: (first + i) % 11 === 0 ? 500 : 200,
      group: null,
      ip: null,
      aborted: 0 as const,
    }))
  // Five hours in batches of 200, a request every 9 s; web-2's requests start up to 2 hours late.
  for (let first = 0; first < 2000; first += 200) {
    a.write(batch(first, 200, 9000), [])
    b.write(batch(first, 200, 9000, first % 400 === 0 ? 2 * HOUR : 0), [])
  }
  a.close()
  b.close()
  reference = new Database(path, { readonly: true })
  service = new DashboardService({ watch: false, now: () => START + 6 * HOUR })
  await service.openFile({ path })
})

afterAll(async () => {
  reference.close()
  await service.close()
  temp.cleanup()
})

describe('a range cut inside hours', () => {
  test('the file has no index on (endpoint_id, time), and its rows are out of time order', () => {
    const indexes = reference
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'request'")
      .pluck()
      .all()
    expect(indexes).toEqual(['request_errors'])
    const outOfOrder = reference
      .prepare(
        'SELECT count(*) FROM request r JOIN request s ON s.id = r.id + 1 WHERE s.time < r.time - ?',
      )
      .pluck()
      .get(HOUR) as number
    expect(outOfOrder).toBeGreaterThan(0)
  })

  test.each([
    ['minutes inside one hour', START + 17 * 60_000, START + 43 * 60_000],
    ['the ends of two hours', START + HOUR - 5 * 60_000, START + HOUR + 7 * 60_000],
    ['three hours and some minutes', START - HOUR + 59 * 60_000, START + 3 * HOUR + 1],
    ['a hour whose requests were all written late', START - 2 * HOUR, START - HOUR + 30_000],
  ])('%s: hits and errors per endpoint equal SQL counts', async (_name, from, to) => {
    const rows = await service.endpoints({ from, to, utcOffsetMinutes: 0 })
    const expected = reference
      .prepare(
        `SELECT endpoint_id AS id, count(*) AS hits, sum(status >= 500) AS errors
         FROM request WHERE time >= ? AND time < ? GROUP BY 1`,
      )
      .all(from, to) as Array<{ id: number; hits: number; errors: number }>
    expect(expected.reduce((sum, e) => sum + e.hits, 0)).toBeGreaterThan(0)
    for (const row of rows) {
      const want = expected.find((e) => e.id === row.id)
      expect(row.range.hits, row.route).toBe(want?.hits ?? 0)
      expect(row.range.errors5xx, row.route).toBe(want?.errors ?? 0)
    }
  })

  test('the latest errors are the newest 5xx of the range, through the index of errors', async () => {
    const from = START + 30 * 60_000
    const to = START + 2 * HOUR
    const errors = await service.latestErrors({ from, to, utcOffsetMinutes: 0, limit: 20 })
    const expected = reference
      .prepare(
        'SELECT id FROM request WHERE time >= ? AND time < ? AND status >= 400 ORDER BY time DESC, id DESC LIMIT 20',
      )
      .pluck()
      .all(from, to)
    expect(errors.map((e) => e.id)).toEqual(expected)
  })

  test("info gives the file's first and last request", async () => {
    const info = await service.info({})
    const bounds = reference
      .prepare('SELECT min(time) AS first, max(time) AS last FROM request')
      .get()
    expect({ first: info.firstRequest, last: info.lastRequest }).toEqual(bounds)
  })
})

test('spans are merged where they overlap or touch, each id read once', () => {
  expect(
    mergeSpans([
      [1, 5],
      [3, 4],
      [6, 9],
      [12, 20],
      [15, 30],
      [40, 40],
    ]),
  ).toEqual([
    [1, 9],
    [12, 30],
    [40, 40],
  ])
  expect(mergeSpans([])).toEqual([])
})
