/**
 * Merging files that retention pruned or sampled: the merged file counts
 * what each source's rollups count (their pruned days and sampled-away
 * requests included), the views over the whole period give the sum of the
 * sources, and an increment with sampled rows falls back to a full merge.
 */
import { join } from 'node:path'
import { MetricsStore, type EndpointState } from 'routemeter/writer'
import { afterAll, expect, it } from 'vitest'
import { DashboardService } from '../../src-main/services/dashboard.js'
import { mergeIncrement, mergeSources } from '../../src-main/services/sources/merge.js'
import { buildMetricsFile, FIXTURE_NOW, scalar, tempDir } from '../fixtures/metrics-files.js'

const DAY = 86_400_000
const temp = tempDir('routemeter-merge-retention-')
afterAll(() => temp.cleanup())

async function hitsPerRoute(path: string): Promise<Map<string, number>> {
  const service = new DashboardService({ now: () => FIXTURE_NOW, watch: false })
  await service.openFile({ path })
  try {
    const rows = await service.endpoints({
      from: FIXTURE_NOW - 40 * DAY,
      to: FIXTURE_NOW,
      utcOffsetMinutes: 0,
    })
    return new Map(rows.map((row) => [`${row.method} ${row.route}`, row.range.hits]))
  } finally {
    await service.close()
  }
}

it('a pruned file and a whole one merge into the sum of their rollups, pruned days included', async () => {
  const a = buildMetricsFile(temp.dir, { name: 'a.db', days: 30, requests: 20_000, seed: 3 })
  const b = buildMetricsFile(temp.dir, { name: 'b.db', days: 30, requests: 15_000, seed: 4 })
  const pruner = new MetricsStore(
    a,
    { name: 'p', source: 'option' },
    FIXTURE_NOW,
    undefined,
    'vm',
    undefined,
    {
      retention: { requestsMs: 5 * DAY },
    },
  )
  while (pruner.maintain(FIXTURE_NOW, 50));
  pruner.close()
  expect(scalar(a, 'SELECT min(time) FROM request')).toBeGreaterThanOrEqual(FIXTURE_NOW - 5 * DAY)
  const [hitsA, hitsB] = [await hitsPerRoute(a), await hitsPerRoute(b)]

  const merged = join(temp.dir, 'merged.db')
  mergeSources(merged, [
    { path: a, label: 'a' },
    { path: b, label: 'b' },
  ])
  const total = (path: string) => scalar(path, 'SELECT sum(requests) FROM rollup_day')
  expect(total(merged)).toBe(total(a) + total(b))
  expect(scalar(merged, 'SELECT sum(requests) FROM rollup_user_day')).toBe(total(a) + total(b))
  expect(scalar(merged, 'SELECT sum(requests) FROM rollup_ip_day')).toBe(total(a) + total(b))
  expect(scalar(merged, 'SELECT sum(requests) FROM rollup_status WHERE endpoint_id > 0')).toBe(
    total(a) + total(b),
  )
  // Raw rows are kept from the later of the two windows.
  expect(Number(scalar(merged, "SELECT value FROM meta WHERE key = 'requests_kept_since'"))).toBe(
    FIXTURE_NOW - 5 * DAY,
  )
  const hits = await hitsPerRoute(merged)
  for (const [route, n] of hits)
    expect(n, route).toBe((hitsA.get(route) ?? 0) + (hitsB.get(route) ?? 0))
  expect(scalar(merged, 'PRAGMA integrity_check')).toBe('ok' as never)
})

it('new sampled rows in a source make the next merge a full one (their weights need its rollups)', () => {
  const path = join(temp.dir, 'sampled.db')
  const store = new MetricsStore(
    path,
    { name: 's', source: 'option' },
    FIXTURE_NOW,
    undefined,
    'vm',
    undefined,
    {
      sample: true,
      retention: { sampleRowsPerSecond: 1 },
    },
  )
  const endpoint: EndpointState = {
    id: undefined,
    method: 'GET',
    route: '/s',
    level: 1,
    pendingLastRequested: 0,
  }
  const batch = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      endpoint,
      time: Date.now() - i,
      durationUs: 1000 + i,
      status: 200,
      group: null,
      ip: null,
      aborted: 0 as const,
    }))
  store.write(batch(30), [endpoint])
  const merged = join(temp.dir, 'merged-sampled.db')
  const marks = mergeSources(merged, [{ path, label: 's' }])
  // Past the burst: rows stand for others now.
  store.write(batch(200), [endpoint])
  store.close()
  expect(scalar(path, 'SELECT max(weight) FROM request')).toBeGreaterThan(1)
  expect(mergeIncrement(merged, [{ path, label: 's' }], marks)).toBeNull()
  mergeSources(merged, [{ path, label: 's' }])
  expect(scalar(merged, 'SELECT sum(requests) FROM rollup_day')).toBe(230)
  expect(scalar(merged, 'SELECT sum(weight) FROM request')).toBe(230)
})
