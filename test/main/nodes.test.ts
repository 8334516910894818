/**
 * The node filter and the per-node breakdown, against counts and
 * durations read with an independent connection. The fixture is the demo
 * file with its requests spread over two nodes, and some left without one,
 * as in a file that a schema-1 collector started and a schema-2 one went on
 * writing.
 */
import Database from 'better-sqlite3'
import { rebuildRollups } from 'routemeter/writer'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { NodeShare, RangeArgs } from '../../src-main/api/contract.js'
import { UNKNOWN_NODE } from '../../src-main/api/contract.js'
import { queryFromArgs } from '../../src-main/api/http.js'
import { DashboardService } from '../../src-main/services/dashboard.js'
import { QUANTILE_RELATIVE_ERROR } from '../../src-main/services/stats.js'
import { startWebServer, type WebServer } from '../../src-main/web/server.js'
import { buildMetricsFile, FIXTURE_NOW, tempDir } from '../fixtures/metrics-files.js'

interface Row {
  endpoint_id: number
  time: number
  duration_us: number
  status: number
  node: string
}

const DAY = 86_400_000
const temp = tempDir()
let path: string
let rows: Row[]
let service: DashboardService
let web: WebServer

const month: RangeArgs = { from: FIXTURE_NOW - 31 * DAY, to: FIXTURE_NOW, utcOffsetMinutes: 0 }

/**
 * Moves the requests to nodes web-1 and web-2; the oldest tenth keeps no node.
 * (The demo writes everything from the one node it runs on.)
 */
function spreadOverNodes(file: string): void {
  const db = new Database(file)
  db.exec(`
    UPDATE request SET node_id = NULL;
    DELETE FROM node;
    INSERT INTO node (id, name, first_seen) VALUES (1, 'web-1', 0), (2, 'web-2', 0);
    UPDATE request SET node_id = CASE
      WHEN id <= (SELECT max(id) / 10 FROM request) THEN NULL
      WHEN id % 3 = 0 THEN 2 ELSE 1 END;
  `)
  // Requests rewritten: their rollups are counted again, as after merging files.
  rebuildRollups(db)
  db.close()
}

beforeAll(async () => {
  path = buildMetricsFile(temp.dir, { requests: 20_000 })
  spreadOverNodes(path)
  const reference = new Database(path, { readonly: true })
  rows = reference
    .prepare(
      `SELECT endpoint_id, time, duration_us, status, coalesce(n.name, '${UNKNOWN_NODE}') AS node
       FROM request r LEFT JOIN node n ON n.id = r.node_id`,
    )
    .all() as Row[]
  reference.close()
  service = new DashboardService({ watch: false, now: () => FIXTURE_NOW })
  await service.openFile({ path })
  web = await startWebServer({ service })
})
afterAll(async () => {
  await web.close()
  await service.close()
  temp.cleanup()
})

function inRange(args: RangeArgs, node?: (name: string) => boolean): Row[] {
  return rows.filter(
    (r) => r.time >= args.from && r.time < args.to && (node === undefined || node(r.node)),
  )
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const h = (sorted.length - 1) / 2
  return (
    sorted[Math.floor(h)]! + (h - Math.floor(h)) * (sorted[Math.ceil(h)]! - sorted[Math.floor(h)]!)
  )
}

function expectShare(share: NodeShare | undefined, own: Row[]): void {
  expect(share).toBeDefined()
  expect(share!.hits).toBe(own.length)
  expect(share!.errors4xx).toBe(own.filter((r) => r.status >= 400 && r.status < 500).length)
  expect(share!.errors5xx).toBe(own.filter((r) => r.status >= 500 && r.status < 600).length)
  expect(share!.stats?.count).toBe(own.length)
  const exact = median(own.map((r) => r.duration_us))
  expect(Math.abs(share!.stats!.median - exact)).toBeLessThanOrEqual(
    QUANTILE_RELATIVE_ERROR * exact + 1,
  )
}

test('info lists the nodes, the requests without one last', async () => {
  expect((await service.info({})).nodes).toEqual(['web-1', 'web-2', UNKNOWN_NODE])
})

describe('nodeBreakdown', () => {
  test('every node, busiest first; the hits add up to the requests in range', async () => {
    const shares = await service.nodeBreakdown(month)
    expect(shares.map((s) => s.node)).toEqual(['web-1', 'web-2', UNKNOWN_NODE])
    for (const share of shares) {
      expectShare(
        share,
        inRange(month, (node) => node === share.node),
      )
    }
    expect(shares.reduce((sum, s) => sum + s.hits, 0)).toBe(inRange(month).length)
  })

  test('of one endpoint, and of chosen nodes (one without requests in range)', async () => {
    const endpointId = rows[0]!.endpoint_id
    const one = await service.nodeBreakdown({ ...month, endpointId })
    for (const share of one) {
      expectShare(
        share,
        inRange(month, (node) => node === share.node).filter((r) => r.endpoint_id === endpointId),
      )
    }
    // The requests without a node are the oldest ones: none in the last day.
    const lastDay = { ...month, from: FIXTURE_NOW - DAY }
    const chosen = await service.nodeBreakdown({ ...lastDay, nodes: [UNKNOWN_NODE, 'web-2'] })
    expect(chosen.map((s) => s.node)).toEqual(['web-2', UNKNOWN_NODE])
    expect(chosen[1]).toEqual({
      node: UNKNOWN_NODE,
      hits: 0,
      errors4xx: 0,
      errors5xx: 0,
      stats: null,
    })
    expect(await service.nodeBreakdown({ ...month, nodes: ['db-9'] })).toEqual([])
  })
})

describe('the nodes filter', () => {
  const web2 = { ...month, nodes: ['web-2'] }

  test('restricts the overview, utilization and performance to those nodes', async () => {
    const own = inRange(web2, (node) => node === 'web-2')
    const overview = await service.endpoints(web2)
    expect(overview.reduce((sum, row) => sum + row.range.hits, 0)).toBe(own.length)
    const utilization = await service.utilization(web2)
    const total = utilization.series.flatMap((s) => s.counts).reduce((a, b) => a + b, 0)
    expect(total).toBe(own.length)
    const performance = await service.performance(web2)
    expect(performance.reduce((sum, box) => sum + box.stats.count, 0)).toBe(own.length)
  })

  test('"(unknown)" selects the requests without a node; an unknown name selects none', async () => {
    const unknown = await service.statusCodes({ ...month, nodes: [UNKNOWN_NODE] })
    const counted = unknown.series.flatMap((s) => s.counts).reduce((a, b) => a + b, 0)
    expect(counted).toBe(inRange(month, (node) => node === UNKNOWN_NODE).length)
    expect(counted).toBeGreaterThan(0)
    const none = await service.hourHeatmap({ ...month, nodes: ['db-9'] })
    expect(none.counts.flat().every((n) => n === 0)).toBe(true)
    const errors = await service.latestErrors({ ...month, nodes: ['db-9'] })
    expect(errors).toEqual([])
  })

  test('over HTTP: GET /api/nodeBreakdown with repeated nodes keys', async () => {
    const args = { ...month, nodes: ['web-1', UNKNOWN_NODE] }
    const url = new URL(`api/nodeBreakdown?${queryFromArgs('nodeBreakdown', args)}`, web.url)
    const response = await fetch(url)
    expect(response.status).toBe(200)
    const body = (await response.json()) as NodeShare[]
    expect(body).toEqual(await service.nodeBreakdown(args))
    expect(body.map((s) => s.node)).toEqual(['web-1', UNKNOWN_NODE])
    const bad = await fetch(
      new URL(`api/nodeBreakdown?from=1&to=2&utcOffsetMinutes=0&endpointId=x`, web.url),
    )
    expect(bad.status).toBe(400)
  })
})
