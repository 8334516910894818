/**
 * Several metrics files as one: two nodes of one service, each written by a
 * real collector bound to a real Koa app, merged by the sources service and
 * read through the dashboard's own queries.
 */
import { Router } from '@koa/router'
import Database from 'better-sqlite3'
import Koa from 'koa'
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bind } from 'routemeter'
import { DashboardService } from '../../src-main/services/dashboard.js'
import { SourcesService } from '../../src-main/services/sources/service.js'
import { tempDir, type TempDir } from '../fixtures/metrics-files.js'
import { waitFor } from '../fixtures/wait.js'
import { decodeProfile, encodeProfile } from 'routemeter/profiles'
import { MetricsStore } from 'routemeter/writer'

interface NodeApp {
  database: string
  get(path: string): Promise<void>
  close(): Promise<void>
}

/** A Koa app whose collector writes `database` as node `node`. */
async function startNode(database: string, node: string, version: string): Promise<NodeApp> {
  const app = new Koa()
  const router = new Router()
  router.get('/api/items', (ctx) => {
    ctx.body = [1, 2, 3]
  })
  router.get('/api/items/:id', (ctx) => {
    if (ctx.params.id === 'missing') ctx.status = 404
    else ctx.body = { id: ctx.params.id }
  })
  // a route of this node only
  router.get(`/api/only-${node}`, (ctx) => {
    ctx.body = node
  })
  app.use(router.routes())
  const collector = bind(app, { database, node, version, flushOnExit: false, groupBy: () => node })
  const server = app.listen(0, '127.0.0.1')
  await new Promise<void>((resolve) => server.once('listening', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    database,
    async get(path) {
      await (await fetch(origin + path)).arrayBuffer()
    },
    async close() {
      collector.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** Requests per (method route, node) in a file, as SQL reads them (the reference). */
function countsByEndpoint(path: string): Map<string, number> {
  const db = new Database(path, { readonly: true })
  const rows = db
    .prepare(
      `SELECT e.method || ' ' || e.route AS endpoint, count(*) AS n
       FROM request r JOIN endpoint e ON e.id = r.endpoint_id GROUP BY 1`,
    )
    .all() as Array<{ endpoint: string; n: number }>
  db.close()
  return new Map(rows.map((row) => [row.endpoint, row.n]))
}

const RANGE = { from: Date.UTC(2020, 0, 1), to: Date.UTC(2100, 0, 1), utcOffsetMinutes: 0 }

let temp: TempDir
let a: NodeApp
let b: NodeApp
let files: DashboardService
let sources: SourcesService

beforeAll(async () => {
  temp = tempDir()
  a = await startNode(join(temp.dir, 'a', 'metrics.db'), 'node-a', '1.0.0')
  b = await startNode(join(temp.dir, 'b', 'metrics.db'), 'node-b', '1.1.0')
  for (let i = 0; i < 30; i++) await a.get(`/api/items/${i}`)
  for (let i = 0; i < 12; i++) await a.get('/api/items')
  await a.get('/api/items/missing')
  await a.get('/api/only-node-a')
  await a.get('/api/only-node-a')
  for (let i = 0; i < 20; i++) await b.get('/api/items')
  await b.get('/nowhere')
  await a.close()
  await b.close()
  files = new DashboardService({ watch: false })
  sources = new SourcesService({ files, dataDir: join(temp.dir, 'data'), watch: false })
})

afterAll(async () => {
  await sources?.close()
  await files?.close()
  temp?.cleanup()
})

describe('merging two nodes', () => {
  it('shows the sum of both files, endpoint by endpoint, with a node each', async () => {
    const info = await sources.open({
      sources: [
        { kind: 'file', path: a.database },
        { kind: 'file', path: b.database },
      ],
    })
    expect(info.requestCount).toBe(30 + 12 + 1 + 2 + 20 + 1)
    expect(info.nodes).toEqual(['node-a', 'node-b'])

    const expected = new Map<string, number>()
    for (const path of [a.database, b.database]) {
      for (const [endpoint, n] of countsByEndpoint(path)) {
        expected.set(endpoint, (expected.get(endpoint) ?? 0) + n)
      }
    }
    const rows = await files.endpoints(RANGE)
    const merged = new Map(
      rows
        .filter((row) => row.range.hits > 0)
        .map((row) => [`${row.method} ${row.route}`, row.range.hits]),
    )
    expect(merged).toEqual(expected)
    // GET /api/items was served by both nodes: one endpoint, not two.
    expect(merged.get('GET /api/items')).toBe(32)

    const split = await files.nodeBreakdown(RANGE)
    expect(split.map((share) => [share.node, share.hits])).toEqual([
      ['node-a', 45],
      ['node-b', 21],
    ])
    expect(split.find((share) => share.node === 'node-a')?.errors4xx).toBe(1)

    const state = await sources.state({})
    expect(state.dataset?.map((source) => source.kind)).toEqual(['file', 'file'])
  })

  it('filters by node', async () => {
    const onlyB = await files.endpoints({ ...RANGE, nodes: ['node-b'] })
    const hits = onlyB.reduce((sum, row) => sum + row.range.hits, 0)
    expect(hits).toBe(21)
  })

  it('adds only what is new when a source grows, and ends where a full merge would', async () => {
    const again = await startNode(b.database, 'node-b', '1.1.0')
    for (let i = 0; i < 7; i++) await again.get('/api/items/7')
    await again.close()
    await sources.remergeNow()
    const info = await files.info({})
    expect(info.requestCount).toBe(66 + 7)
    const split = await files.nodeBreakdown(RANGE)
    expect(split.find((share) => share.node === 'node-b')?.hits).toBe(28)
  })

  it('sets a level in every file of the dataset and says so per file', async () => {
    const row = (await files.endpoints(RANGE)).find(
      (candidate) => candidate.method === 'GET' && candidate.route === '/api/items',
    )!
    const change = await sources.setLevel({ endpointId: row.id, level: 0 })
    expect(change.endpoint.level).toBe(0)
    expect(change.sources.map((result) => result.accepted)).toEqual([true, true])
    for (const path of [a.database, b.database]) {
      const db = new Database(path, { readonly: true })
      const level = db
        .prepare("SELECT monitor_level FROM endpoint WHERE method = 'GET' AND route = '/api/items'")
        .pluck()
        .get()
      db.close()
      expect(level).toBe(0)
    }
    // A route only node-a has is refused by node-b's file, and the answer says which.
    const only = (await files.endpoints(RANGE)).find(
      (candidate) => candidate.route === '/api/only-node-a',
    )!
    const partial = await sources.setLevel({ endpointId: only.id, level: 2 })
    expect(partial.sources.map((result) => result.accepted)).toEqual([true, false])
    expect(partial.sources[1]!.message).toContain('/api/only-node-a')
    expect(partial.endpoint.level).toBe(2)
  })

  it('merges again by itself while a collector writes one of the files', async () => {
    const watched = new DashboardService({ watch: { debounceMs: 50, pollIntervalMs: 200 } })
    const live = new SourcesService({
      files: watched,
      dataDir: join(temp.dir, 'live-data'),
      watch: { debounceMs: 50, pollIntervalMs: 200 },
    })
    const events: string[] = []
    watched.onFileEvent((event) => events.push(event.kind))
    const first = await live.open({
      sources: [
        { kind: 'file', path: a.database },
        { kind: 'file', path: b.database },
      ],
    })
    const running = await startNode(a.database, 'node-a', '1.0.0')
    // (GET /api/items is at level 0 since the test above: not recorded)
    for (let i = 0; i < 5; i++) await running.get('/api/items/9')
    await waitFor('the new requests in the merged dataset', async () => {
      return (await watched.info({})).requestCount === first.requestCount + 5
    })
    // Merged in place: the views hear "changed", not a new file.
    await waitFor('a changed event', () => events.includes('changed'))
    await running.close()
    await live.close()
    await watched.close()
  })

  it('says so when a changed file cannot be merged again, and keeps the last merge', async () => {
    const dir = join(temp.dir, 'breaking')
    mkdirSync(dir)
    const first = join(dir, 'a.db')
    const second = join(dir, 'b.db')
    copyFileSync(a.database, first)
    copyFileSync(b.database, second)
    const watched = new DashboardService({ watch: { debounceMs: 50, pollIntervalMs: 200 } })
    const live = new SourcesService({
      files: watched,
      dataDir: join(dir, 'data'),
      watch: { debounceMs: 50, pollIntervalMs: 200 },
    })
    const errors: string[] = []
    watched.onFileEvent((event) => {
      if (event.kind === 'error') errors.push(event.error.message)
    })
    const info = await live.open({
      sources: [
        { kind: 'file', path: first },
        { kind: 'file', path: second },
      ],
    })
    writeFileSync(second, 'time,endpoint\n1,/a\n')
    const message = await waitFor('an error event', () => errors[0])
    expect(message).toContain(`${second} changed but could not be merged again`)
    expect((await watched.info({})).requestCount).toBe(info.requestCount)
    await live.close()
    await watched.close()
  })

  it('refuses a file that is not a metrics file, and keeps the dataset on screen', async () => {
    const before = files.path
    await expect(
      sources.open({
        sources: [
          { kind: 'file', path: a.database },
          { kind: 'file', path: join(temp.dir, 'missing.db') },
        ],
      }),
    ).rejects.toMatchObject({ code: 'FILE_MISSING' })
    expect(files.path).toBe(before)
  })
})

describe('outliers of several files', () => {
  /** A Koa app at level 2 whose /slow waits on a timer when asked: outliers of its own. */
  async function slowNode(database: string, node: string): Promise<NodeApp & { flush(): void }> {
    const app = new Koa()
    const router = new Router()
    router.get('/slow', async (ctx) => {
      if (ctx.query.slow === '1') await new Promise((resolve) => setTimeout(resolve, 250))
      ctx.body = 'ok'
    })
    app.use(router.routes())
    const collector = bind(app, {
      database,
      node,
      version: '1.0.0',
      defaultLevel: 2,
      flushOnExit: false,
      outliers: { minDuration: 100 },
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise<void>((resolve) => server.once('listening', resolve))
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    return {
      database,
      flush: () => collector.flush(),
      async get(path) {
        await (await fetch(origin + path)).arrayBuffer()
      },
      async close() {
        collector.close()
        server.closeAllConnections()
        await new Promise<void>((resolve) => server.close(() => resolve()))
      },
    }
  }

  function outlierRows(path: string): Array<{ node: string; route: string; url: string }> {
    const db = new Database(path, { readonly: true })
    try {
      return db
        .prepare(
          `SELECT n.name AS node, e.route, o.url FROM outlier o
           JOIN endpoint e ON e.id = o.endpoint_id JOIN node n ON n.id = o.node_id ORDER BY o.url`,
        )
        .all() as Array<{ node: string; route: string; url: string }>
    } finally {
      db.close()
    }
  }

  it('are merged once each, with their endpoints and nodes, also when merged again', async () => {
    const { mergeIncrement, mergeSources } =
      await import('../../src-main/services/sources/merge.js')
    const temp = tempDir('routemeter-merge-outliers-')
    try {
      const apps = await Promise.all(
        ['a', 'b'].map((node) => slowNode(join(temp.dir, `${node}.db`), node)),
      )
      const slowOnce = async (app: NodeApp, n: number): Promise<void> => {
        for (let i = 0; i < 25; i++) await app.get('/slow')
        await new Promise((resolve) => setTimeout(resolve, 150))
        await app.get(`/slow?slow=1&n=${n}`)
      }
      for (const app of apps) await slowOnce(app, 1)
      await waitFor('an outlier in each file', () => {
        for (const app of apps) app.flush()
        return apps.every((app) => outlierRows(app.database).length === 1)
      })
      const sources = apps.map((app, i) => ({ path: app.database, label: ['a', 'b'][i]! }))
      const merged = join(temp.dir, 'merged.db')
      const marks = mergeSources(merged, sources)
      expect(outlierRows(merged)).toEqual([
        { node: 'a', route: '/slow', url: '/slow?slow=1&n=1' },
        { node: 'b', route: '/slow', url: '/slow?slow=1&n=1' },
      ])
      // A second outlier on node a: an incremental merge adds it, and only it.
      await slowOnce(apps[0]!, 2)
      await waitFor('a second outlier of node a', () => {
        apps[0]!.flush()
        return outlierRows(apps[0]!.database).length === 2
      })
      expect(mergeIncrement(merged, sources, marks)).not.toBeNull()
      expect(outlierRows(merged)).toEqual([
        { node: 'a', route: '/slow', url: '/slow?slow=1&n=1' },
        { node: 'b', route: '/slow', url: '/slow?slow=1&n=1' },
        { node: 'a', route: '/slow', url: '/slow?slow=1&n=2' },
      ])
      for (const app of apps) await app.close()
    } finally {
      temp.cleanup()
    }
  })
})

describe('level 3 profiles of several files', () => {
  /**
   * A metrics file of node `node` with one request of GET /work (level 3,
   * version 2.0.0) and this hour's profile of it: `samples` samples of work().
   */
  function profiledFile(path: string, node: string, samples: number): string {
    const store = new MetricsStore(
      path,
      { name: '2.0.0', source: 'option' },
      Date.now(),
      undefined,
      node,
    )
    const endpoint = {
      id: undefined,
      method: 'GET',
      route: '/work',
      level: 3 as const,
      pendingLastRequested: 0,
    }
    store.write(
      [
        {
          endpoint,
          time: Date.now(),
          durationUs: 1000,
          status: 200,
          group: null,
          ip: null,
          aborted: 0,
        },
      ],
      [endpoint],
    )
    store.close()
    const db = new Database(path)
    db.prepare('INSERT INTO profile VALUES (1, ?, 1, 1, ?, 5000, ?)').run(
      Math.floor(Date.now() / 3_600_000),
      samples,
      encodeProfile(workProfile(samples)),
    )
    db.close()
    return path
  }

  const workProfile = (samples: number) => ({
    intervalUs: 5000,
    frames: [{ name: 'work', url: 'file:///app.js', line: 3 }],
    stacks: [[[0], samples]] as Array<[number[], number]>,
  })

  it('are carried with their endpoints, versions and nodes; an outlier keeps its own', async () => {
    const { mergeSources } = await import('../../src-main/services/sources/merge.js')
    const temp = tempDir('routemeter-merge-profiles-')
    try {
      const sources = ['a', 'b'].map((node, i) => {
        const path = profiledFile(join(temp.dir, `${node}.db`), node, 10 * (i + 1))
        const db = new Database(path)
        db.prepare(
          `INSERT INTO outlier (endpoint_id, time, duration_us, threshold_us, caught_us, status, version_id,
             node_id, method, url, cause, cause_detail, context, profile)
           VALUES (1, ?, 90000, 50000, 90000, 200, 1, 1, 'GET', '/work', 'event-loop', 'x', '{}', ?)`,
        ).run(Date.now(), encodeProfile(workProfile(7)))
        db.close()
        return { path, label: node }
      })
      const merged = join(temp.dir, 'merged.db')
      mergeSources(merged, sources)
      const db = new Database(merged, { readonly: true })
      try {
        const rows = db
          .prepare(
            `SELECT n.name AS node, e.route, v.name AS version, p.samples, p.tree FROM profile p
             JOIN endpoint e ON e.id = p.endpoint_id JOIN version v ON v.id = p.version_id
             JOIN node n ON n.id = p.node_id ORDER BY n.name`,
          )
          .all() as Array<{
          node: string
          route: string
          version: string
          samples: number
          tree: Uint8Array
        }>
        expect(rows.map((r) => [r.node, r.route, r.version, r.samples])).toEqual([
          ['a', '/work', '2.0.0', 10],
          ['b', '/work', '2.0.0', 20],
        ])
        expect(decodeProfile(rows[1]!.tree).stacks[0]![1]).toBe(20)
        const outlierProfiles = db
          .prepare('SELECT profile FROM outlier WHERE profile IS NOT NULL')
          .pluck()
          .all() as Uint8Array[]
        expect(outlierProfiles.map((p) => decodeProfile(p).stacks[0]![1])).toEqual([7, 7])
      } finally {
        db.close()
      }
    } finally {
      temp.cleanup()
    }
  })

  it("a delta pull replaces the copy's profiles with the server's (an hour's row grows)", async () => {
    const { applyDelta } = await import('../../src-main/services/sources/merge.js')
    const temp = tempDir('routemeter-delta-profiles-')
    try {
      const make = (name: string, samples: number) =>
        profiledFile(join(temp.dir, name), 'n', samples)
      const copy = make('copy.db', 5)
      const delta = make('delta.db', 12)
      applyDelta(copy, delta, 1)
      const db = new Database(copy, { readonly: true })
      try {
        const rows = db.prepare('SELECT samples, tree FROM profile').all() as Array<{
          samples: number
          tree: Uint8Array
        }>
        expect(rows.map((r) => r.samples)).toEqual([12])
        expect(decodeProfile(rows[0]!.tree).stacks[0]![1]).toBe(12)
      } finally {
        db.close()
      }
    } finally {
      temp.cleanup()
    }
  })
})
