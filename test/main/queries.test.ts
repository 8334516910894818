/**
 * Every view against an independent computation over the same rows: the
 * test reads the request table with its own connection and recomputes
 * counts, days, hours and statistics with plain sorts and Date, and SQLite's
 * own percentile_cont (also R-7) as a second opinion on medians.
 *
 * The views read rollups (queries.ts): counts, min, max and mean must be
 * exact; quantiles within the histograms' documented error
 * (QUANTILE_RELATIVE_ERROR of the exact value, plus 1 µs); whiskers are
 * values of the histogram, checked for where they must lie. Requests count
 * per local day and hour at the start of their UTC hour (exact for whole-hour
 * offsets; the UTC+5:30 case checks the documented shift).
 */
import Database from 'better-sqlite3'
import { existsSync, statSync } from 'node:fs'
import { SCHEMA_VERSION } from 'routemeter/schema'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { BoxStats, RangeArgs } from '../../src-main/api/contract.js'
import { DashboardService } from '../../src-main/services/dashboard.js'
import { QUANTILE_RELATIVE_ERROR } from '../../src-main/services/stats.js'
import { buildMetricsFile, FIXTURE_NOW, tempDir } from '../fixtures/metrics-files.js'

interface Row {
  id: number
  endpoint_id: number
  time: number
  duration_us: number
  status: number
  version_id: number
  user_group_id: number | null
  client_ip_id: number | null
  aborted: number
}

const DAY = 86_400_000
const temp = tempDir()
let path: string
let rows: Row[]
let reference: Database.Database
let service: DashboardService

beforeAll(async () => {
  path = buildMetricsFile(temp.dir, { requests: 20_000 })
  reference = new Database(path, { readonly: true })
  rows = reference.prepare('SELECT * FROM request').all() as Row[]
  service = new DashboardService({ watch: false, now: () => FIXTURE_NOW })
  await service.openFile({ path })
})
afterAll(async () => {
  await service.close()
  reference.close()
  temp.cleanup()
})

function idOf(method: string, route: string): number {
  return reference
    .prepare('SELECT id FROM endpoint WHERE method = ? AND route = ?')
    .pluck()
    .get(method, route) as number
}

/** R-7 from a plain sort, written independently of stats.ts. */
function quantile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  const rank = 1 + (sorted.length - 1) * p
  const below = sorted[Math.floor(rank) - 1]!
  const above = sorted[Math.min(Math.ceil(rank), sorted.length) - 1]!
  return below + (rank - Math.floor(rank)) * (above - below)
}

function box(values: number[]): BoxStats {
  const q1 = quantile(values, 0.25)
  const q3 = quantile(values, 0.75)
  const iqr = q3 - q1
  return {
    count: values.length,
    min: Math.min(...values),
    q1,
    median: quantile(values, 0.5),
    q3,
    max: Math.max(...values),
    whiskerLow: Math.min(...values.filter((v) => v >= q1 - 1.5 * iqr)),
    whiskerHigh: Math.max(...values.filter((v) => v <= q3 + 1.5 * iqr)),
    mean: values.reduce((a, b) => a + b, 0) / values.length,
    p95: quantile(values, 0.95),
  }
}

/** A quantile from the histograms: within the documented error of the exact R-7 value. */
function expectQuantile(actual: number | null | undefined, exact: number, what = ''): void {
  expect(actual, what).toBeTypeOf('number')
  expect(Math.abs(actual! - exact), `${what}: ${actual} for ${exact}`).toBeLessThanOrEqual(
    QUANTILE_RELATIVE_ERROR * exact + 1,
  )
}

function expectBox(actual: BoxStats | null | undefined, values: number[]): void {
  expect(actual).toBeTruthy()
  const expected = box(values)
  for (const key of ['count', 'min', 'max'] as const) expect(actual![key], key).toBe(expected[key])
  expect(actual!.mean).toBeCloseTo(expected.mean, 6)
  for (const key of ['q1', 'median', 'q3', 'p95'] as const) {
    expectQuantile(actual![key], expected[key], key)
  }
  expect(actual!.whiskerLow).toBeGreaterThanOrEqual(actual!.min)
  expect(actual!.whiskerLow).toBeLessThanOrEqual(actual!.q1)
  expect(actual!.whiskerHigh).toBeLessThanOrEqual(actual!.max)
  expect(actual!.whiskerHigh).toBeGreaterThanOrEqual(actual!.q3)
  // No whisker reaches past its fence by more than a bucket.
  const fence = 1.5 * (actual!.q3 - actual!.q1)
  expect(actual!.whiskerLow).toBeGreaterThanOrEqual(
    (actual!.q1 - fence) / (1 + QUANTILE_RELATIVE_ERROR) - 1,
  )
  expect(actual!.whiskerHigh).toBeLessThanOrEqual(
    (actual!.q3 + fence) * (1 + QUANTILE_RELATIVE_ERROR) + 1,
  )
}

/** Local day of the start of the UTC hour of `time`: where the views count a request. */
function countedDay(time: number, offsetMinutes: number, days: string[]): string {
  const day = localDay(Math.floor(time / 3_600_000) * 3_600_000, offsetMinutes)
  // An hour that starts before the range's first local day counts in it (and after the last, in it).
  return day < days[0]! ? days[0]! : day > days.at(-1)! ? days.at(-1)! : day
}

function localDay(time: number, offsetMinutes: number): string {
  return new Date(time + offsetMinutes * 60_000).toISOString().slice(0, 10)
}

function inRange(args: RangeArgs): Row[] {
  const ids = args.endpointIds?.length ? new Set(args.endpointIds) : undefined
  return rows.filter(
    (r) => r.time >= args.from && r.time < args.to && (!ids || ids.has(r.endpoint_id)),
  )
}

function groupBy<K>(list: Row[], key: (row: Row) => K): Map<K, Row[]> {
  const groups = new Map<K, Row[]>()
  for (const row of list) {
    const k = key(row)
    const group = groups.get(k)
    if (group === undefined) groups.set(k, [row])
    else group.push(row)
  }
  return groups
}

/** The days of [from, to) in the offset, enumerated by stepping a Date. */
function daysBetween(from: number, to: number, offsetMinutes: number): string[] {
  const days: string[] = []
  for (let t = from; ; t += DAY) {
    const day = localDay(Math.min(t, to - 1), offsetMinutes)
    if (days.at(-1) !== day) days.push(day)
    if (t >= to - 1) break
  }
  return days
}

// Ten days in the middle of the month, starting mid-day, in UTC-5; and the whole month in UTC+2.
const tenDays: RangeArgs = {
  from: FIXTURE_NOW - 20 * DAY + 3_600_000 * 7,
  to: FIXTURE_NOW - 10 * DAY,
  utcOffsetMinutes: -300,
}
const month: RangeArgs = { from: FIXTURE_NOW - 31 * DAY, to: FIXTURE_NOW, utcOffsetMinutes: 120 }

test('the fixture looks like a month of traffic', () => {
  expect(rows.length).toBeGreaterThan(18_000)
  expect(new Set(rows.map((r) => r.version_id)).size).toBe(3)
  expect(rows.some((r) => r.status >= 500)).toBe(true)
  expect(rows.some((r) => r.status >= 400 && r.status < 500)).toBe(true)
})

test('info', async () => {
  const info = await service.info({})
  const times = rows.map((r) => r.time)
  expect(info).toEqual({
    path,
    // The file and its -wal, as on disk.
    sizeBytes: statSync(path).size + (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0),
    schemaVersion: SCHEMA_VERSION,
    requestCount: rows.length,
    endpointCount: reference.prepare('SELECT count(*) FROM endpoint').pluck().get(),
    firstRequest: Math.min(...times),
    lastRequest: Math.max(...times),
    createdAt: FIXTURE_NOW - 30 * DAY,
    demo: true,
    nodes: reference.prepare('SELECT name FROM node ORDER BY name').pluck().all(),
    damaged: null,
    rawSince: 0,
  })
})

// A range that starts and ends exactly at requests: the first one is in, the last one out.
const edges = (): RangeArgs => ({
  from: rows[2000]!.time,
  to: rows[15_000]!.time,
  utcOffsetMinutes: 330,
})

describe.each([
  ['ten days, UTC-5', () => tenDays],
  ['the month, UTC+2', () => month],
  ['from one request to another, UTC+5:30', edges],
])('%s', (_name, rangeOf) => {
  let range: RangeArgs
  beforeAll(() => {
    range = rangeOf()
  })

  test('endpoints: hits, errors, median and p95 for today, the week and the range', async () => {
    const overview = await service.endpoints(range)
    const endpointCount = reference.prepare('SELECT count(*) FROM endpoint').pluck().get()
    expect(overview).toHaveLength(endpointCount as number)
    // "today" starts at local midnight of the service's clock.
    const local = new Date(FIXTURE_NOW + range.utcOffsetMinutes * 60_000)
    const midnight =
      Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate()) -
      range.utcOffsetMinutes * 60_000
    const periods = {
      today: (r: Row) => r.time >= midnight,
      week: (r: Row) => r.time >= FIXTURE_NOW - 7 * DAY,
      range: (r: Row) => r.time >= range.from && r.time < range.to,
    }
    for (const row of overview) {
      for (const [period, keep] of Object.entries(periods)) {
        const own = rows.filter((r) => r.endpoint_id === row.id && keep(r))
        const stats = row[period as keyof typeof periods]
        const durations = own.map((r) => r.duration_us)
        expect(stats.hits, `${row.route} ${period}`).toBe(own.length)
        expect(stats.errors4xx).toBe(own.filter((r) => r.status >= 400 && r.status < 500).length)
        expect(stats.errors5xx).toBe(own.filter((r) => r.status >= 500 && r.status < 600).length)
        if (own.length === 0) {
          expect(stats.medianUs).toBeNull()
          expect(stats.p95Us).toBeNull()
        } else {
          expectQuantile(stats.medianUs, quantile(durations, 0.5), `${row.route} median`)
          expectQuantile(stats.p95Us, quantile(durations, 0.95), `${row.route} p95`)
        }
      }
    }
    // A second opinion on the medians: SQLite's percentile_cont.
    const sqlite = reference
      .prepare(
        `SELECT endpoint_id AS id, percentile_cont(duration_us, 0.5) AS median,
                percentile_cont(duration_us, 0.95) AS p95
         FROM request WHERE time >= ? AND time < ? GROUP BY endpoint_id`,
      )
      .all(range.from, range.to) as Array<{ id: number; median: number; p95: number }>
    for (const { id, median, p95 } of sqlite) {
      const row = overview.find((r) => r.id === id)!
      expectQuantile(row.range.medianUs, median)
      expectQuantile(row.range.p95Us, p95)
    }
  })

  test('utilization: requests per endpoint per local day', async () => {
    const result = await service.utilization(range)
    const days = daysBetween(range.from, range.to, range.utcOffsetMinutes)
    expect(result.days).toEqual(days)
    const perEndpoint = groupBy(inRange(range), (r) => r.endpoint_id)
    expect(result.series.map((s) => s.endpointId).sort()).toEqual([...perEndpoint.keys()].sort())
    for (const series of result.series) {
      const perDay = groupBy(perEndpoint.get(series.endpointId)!, (r) =>
        countedDay(r.time, range.utcOffsetMinutes, days),
      )
      expect(series.counts).toEqual(days.map((day) => perDay.get(day)?.length ?? 0))
    }
    const totals = result.series.map((s) => s.counts.reduce((a, b) => a + b, 0))
    expect(totals).toEqual([...totals].sort((a, b) => b - a))
  })

  test('hour heatmap: requests per local hour and day, all endpoints and one', async () => {
    const endpointId = idOf('GET', '/api/products/:id')
    for (const args of [range, { ...range, endpointId }]) {
      const result = await service.hourHeatmap(args)
      const days = daysBetween(range.from, range.to, range.utcOffsetMinutes)
      expect(result.days).toEqual(days)
      const expected = Array.from({ length: 24 }, () => days.map(() => 0))
      for (const r of inRange(range)) {
        if ('endpointId' in args && r.endpoint_id !== endpointId) continue
        const hourStart = Math.floor(r.time / 3_600_000) * 3_600_000
        const local = new Date(hourStart + range.utcOffsetMinutes * 60_000)
        expected[local.getUTCHours()]![
          days.indexOf(countedDay(r.time, range.utcOffsetMinutes, days))
        ]!++
      }
      expect(result.counts).toEqual(expected)
    }
  })

  test('performance: a box per endpoint, slowest median first', async () => {
    const result = await service.performance(range)
    const perEndpoint = groupBy(inRange(range), (r) => r.endpoint_id)
    expect(result).toHaveLength(perEndpoint.size)
    for (const { endpointId, stats } of result) {
      expectBox(
        stats,
        perEndpoint.get(endpointId)!.map((r) => r.duration_us),
      )
    }
    const medians = result.map((b) => b.stats.median)
    expect(medians).toEqual([...medians].sort((a, b) => b - a))
  })

  test('version evolution: a box per version, null where the endpoint had no request', async () => {
    const versions = reference
      .prepare('SELECT id, name, first_seen AS firstSeen FROM version ORDER BY first_seen')
      .all() as Array<{ id: number; name: string; firstSeen: number }>
    const endpoints = reference.prepare('SELECT id, route FROM endpoint').all() as Array<{
      id: number
      route: string
    }>
    const present = new Set(inRange(range).map((r) => r.version_id))
    for (const endpoint of endpoints) {
      const result = await service.versionEvolution({ ...range, endpointId: endpoint.id })
      expect(result.versions.map((v) => v.id)).toEqual(
        versions.filter((v) => present.has(v.id)).map((v) => v.id),
      )
      result.versions.forEach((version, i) => {
        const own = inRange(range).filter(
          (r) => r.endpoint_id === endpoint.id && r.version_id === version.id,
        )
        if (own.length === 0) expect(result.boxes[i]).toBeNull()
        else
          expectBox(
            result.boxes[i],
            own.map((r) => r.duration_us),
          )
      })
    }
  })

  test('version utilization: requests per version and endpoint', async () => {
    const result = await service.versionUtilization(range)
    const selected = inRange(range)
    expect([...result.endpointIds].sort()).toEqual(
      [...new Set(selected.map((r) => r.endpoint_id))].sort(),
    )
    result.versions.forEach((version, v) => {
      result.endpointIds.forEach((endpointId, e) => {
        expect(result.counts[v]![e]).toBe(
          selected.filter((r) => r.version_id === version.id && r.endpoint_id === endpointId)
            .length,
        )
      })
    })
    const firstSeen = result.versions.map((v) => v.firstSeen)
    expect(firstSeen).toEqual([...firstSeen].sort((a, b) => a - b))
  })

  test('status codes per day, most frequent first', async () => {
    const result = await service.statusCodes(range)
    const days = daysBetween(range.from, range.to, range.utcOffsetMinutes)
    const byStatus = groupBy(inRange(range), (r) => r.status)
    expect(result.series.map((s) => s.status).sort()).toEqual([...byStatus.keys()].sort())
    for (const { status, counts } of result.series) {
      const perDay = groupBy(byStatus.get(status)!, (r) =>
        countedDay(r.time, range.utcOffsetMinutes, days),
      )
      expect(counts).toEqual(days.map((d) => perDay.get(d)?.length ?? 0))
    }
    const totals = result.series.map((s) => s.counts.reduce((a, b) => a + b, 0))
    expect(totals).toEqual([...totals].sort((a, b) => b - a))
  })
})

describe('clients', () => {
  const names = (table: 'user_group' | 'client_ip'): Map<number, string> =>
    new Map(
      (
        reference
          .prepare(
            `SELECT id, ${table === 'user_group' ? 'name' : 'address'} AS name FROM ${table}`,
          )
          .all() as Array<{ id: number; name: string }>
      ).map((r) => [r.id, r.name]),
    )

  test.each(['user', 'ip'] as const)(
    'by %s: busiest first, boxes and the version matrix',
    async (kind) => {
      const endpointId = idOf('GET', '/api/users/:id/recommendations') // cost depends on the user
      const result = await service.clients({ ...month, endpointId, kind })
      const column = kind === 'user' ? 'user_group_id' : 'client_ip_id'
      const nameOf = names(kind === 'user' ? 'user_group' : 'client_ip')
      const own = inRange(month).filter((r) => r.endpoint_id === endpointId)
      const byClient = groupBy(own, (r) => r[column])
      const busiest = [...byClient.entries()]
        .map(([id, list]) => ({
          name: id === null ? '(none)' : nameOf.get(id)!,
          count: list.length,
        }))
        .sort((a, b) => b.count - a.count)
      expect(result.available.map((a) => a.count)).toEqual(busiest.map((b) => b.count))
      expect(new Set(result.available.map((a) => a.name))).toEqual(
        new Set(busiest.map((b) => b.name)),
      )
      expect(result.clients.map((c) => c.name)).toEqual(
        result.available.slice(0, 10).map((a) => a.name),
      )
      for (const [i, client] of result.clients.entries()) {
        const list = [...byClient.entries()].find(
          ([id]) => (id === null ? '(none)' : nameOf.get(id)) === client.name,
        )![1]
        expectBox(
          client.stats,
          list.map((r) => r.duration_us),
        )
        result.versions.forEach((version, v) => {
          const durations = list
            .filter((r) => r.version_id === version.id)
            .map((r) => r.duration_us)
          if (durations.length === 0) expect(result.medianUs[i]![v]).toBeNull()
          else expectQuantile(result.medianUs[i]![v], quantile(durations, 0.5))
        })
      }
    },
  )

  test('the slow endpoint is slowest for the user with the most data', async () => {
    const endpointId = idOf('GET', '/api/users/:id/recommendations')
    const result = await service.clients({ ...month, endpointId, kind: 'user' })
    const slowest = [...result.clients].sort((a, b) => b.stats.median - a.stats.median)[0]!
    expect(slowest.name).toBe('umbrella')
  })

  test('chosen names, "(none)" for requests without a user, limit', async () => {
    const login = idOf('POST', '/api/auth/login') // before login there is no user
    const result = await service.clients({
      ...month,
      endpointId: 1,
      kind: 'user',
      names: ['wonka', 'nobody-by-that-name', 'acme-corp'],
    })
    expect(result.clients.map((c) => c.name)).toEqual(['acme-corp', 'wonka'])
    const anonymous = await service.clients({
      ...month,
      endpointId: login,
      kind: 'user',
      names: ['(none)'],
    })
    expect(anonymous.clients).toHaveLength(1)
    expect(anonymous.clients[0]!.stats.count).toBe(
      inRange(month).filter((r) => r.endpoint_id === login).length,
    )
    const top3 = await service.clients({ ...month, endpointId: 1, kind: 'ip', limit: 3 })
    expect(top3.clients).toHaveLength(3)
  })
})

describe('latest errors', () => {
  test('newest first, 4xx/5xx and aborted requests, with names', async () => {
    const result = await service.latestErrors({ ...month, limit: 40 })
    const expected = inRange(month)
      .filter((r) => r.status >= 400 || r.aborted === 1)
      .sort((a, b) => b.time - a.time || b.id - a.id)
      .slice(0, 40)
    expect(result.map((e) => e.id)).toEqual(expected.map((r) => r.id))
    const first = result[0]!
    const row = expected[0]!
    expect(first).toMatchObject({
      endpointId: row.endpoint_id,
      time: row.time,
      durationUs: row.duration_us,
      status: row.status,
      aborted: row.aborted === 1,
    })
    expect(typeof first.version).toBe('string')
  })

  test('of one endpoint, default limit 50', async () => {
    const endpointId = idOf('GET', '/api/products/:id')
    const result = await service.latestErrors({ ...month, endpointId })
    expect(result).toHaveLength(50)
    expect(result.every((e) => e.endpointId === endpointId && (e.status >= 400 || e.aborted))).toBe(
      true,
    )
  })
})

describe('ranges and selections', () => {
  test('`to` is exclusive and `from` inclusive', async () => {
    const request = rows[1000]!
    const sameTime = rows.filter((r) => r.time === request.time).length
    const exactly = { from: request.time, to: request.time + 1, utcOffsetMinutes: 0 }
    const before = { from: request.time - 1, to: request.time, utcOffsetMinutes: 0 }
    const total = (await service.utilization(exactly)).series.flatMap((s) => s.counts)
    expect(total.reduce((a, b) => a + b, 0)).toBe(sameTime)
    const none = (await service.utilization(before)).series.flatMap((s) => s.counts)
    expect(none.reduce((a, b) => a + b, 0)).toBe(
      rows.filter((r) => r.time === request.time - 1).length,
    )
  })

  test('endpointIds restricts every view; a selected endpoint without requests stays visible', async () => {
    const detail = idOf('GET', '/api/products/:id')
    const search = idOf('GET', '/api/products/search')
    // /health is at level 0: known, but no request is recorded.
    const health = idOf('GET', '/health')
    const byId = (a: number, b: number): number => a - b
    const args = { ...month, endpointIds: [detail, search, health, 9999] }
    const expected = [detail, search, health].sort(byId)
    expect((await service.endpoints(args)).map((r) => r.id).sort(byId)).toEqual(expected)
    const utilization = await service.utilization(args)
    expect(utilization.series.map((s) => s.endpointId).sort(byId)).toEqual(expected)
    const idle = utilization.series.find((s) => s.endpointId === health)!
    expect(idle.counts.every((c) => c === 0)).toBe(true)
    expect((await service.performance(args)).map((b) => b.endpointId).sort(byId)).toEqual(
      [detail, search].sort(byId),
    )
  })

  test('an unknown endpoint is a bad argument where one endpoint is required', async () => {
    await expect(service.versionEvolution({ ...month, endpointId: 9999 })).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
    })
  })
})
