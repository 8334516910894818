/*
 * Level 2 on real Koa and Express apps: requests that are sometimes slow
 * because they wait on a slow HTTP server (fetch), on Redis (a real server,
 * through ioredis's tracing channel), on a blocked event loop, or on a timer.
 * Each outlier must name its cause; fast requests must give none.
 */
import Router from '@koa/router'
import express from 'express'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import Koa from 'koa'
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bind, type OutlierContext, type OutlierRow, type RoutemeterOptions } from 'routemeter'
import { redisServerBinary, startRedis, type RedisServer } from '../fixtures/redis-server.js'
import {
  defer,
  listen,
  openDb,
  removeTempDirs,
  request,
  tempDatabase,
  waitFor,
  withDb,
} from './helpers.js'

afterAll(removeTempDirs)

const SLOW_MS = 300

let redisServer: RedisServer | undefined
const redisBinary = redisServerBinary()
if (redisBinary === undefined) {
  const why = 'redis-server is not installed (apt-get install redis-server; .ci/run does)'
  if (process.env.CI !== undefined) throw new Error(why)
  console.warn(`outliers.test.ts: the Redis cases are skipped: ${why}`)
}

/** A slow upstream service: answers /wait?ms=N after N ms. */
let upstream = ''
beforeAll(async () => {
  const server = createServer((req, res) => {
    const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0)
    setTimeout(() => res.end('upstream'), ms)
  }).listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  upstream = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  if (redisBinary !== undefined) redisServer = await startRedis(redisBinary)
  return async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await redisServer?.stop()
  }
})

function blockFor(ms: number): void {
  const end = Date.now() + ms
  while (Date.now() < end) {
    // a CPU loop: the event loop runs nothing else meanwhile
  }
}

/** What each endpoint does when it is slow (?slow=1); fast, it answers at once. */
function slowWork(
  redis: Redis | undefined,
): Record<string, (slow: string | undefined) => Promise<string>> {
  return {
    '/fetch': async (slow) => {
      if (slow === undefined) return 'fast'
      return (await fetch(`${upstream}/wait?ms=${SLOW_MS}`)).text()
    },
    '/http': async (slow) => {
      if (slow === undefined) return 'fast'
      return new Promise((resolve, reject) => {
        httpRequest(`${upstream}/wait?ms=${SLOW_MS}&via=http`, (res) => {
          res.resume()
          res.on('end', () => resolve('upstream'))
        })
          .on('error', reject)
          .end()
      })
    },
    '/redis': async (slow) => {
      if (slow === undefined || redis === undefined) return 'fast'
      // BLPOP on an empty list waits its timeout out on the server.
      await redis.blpop(`empty-${Math.random()}`, SLOW_MS / 1000)
      return 'redis'
    },
    '/cpu': async (slow) => {
      if (slow !== undefined) blockFor(SLOW_MS)
      return 'cpu'
    },
    // ?slow=1 waits SLOW_MS, ?slow=N waits N ms.
    '/timer': async (slow) => {
      const ms = slow === undefined ? 0 : slow === '1' ? SLOW_MS : Number(slow)
      if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms))
      return 'timer'
    },
  }
}

interface App {
  url: string
  database: string
  handle: ReturnType<typeof bind>
}

type Framework = 'koa' | 'express' | 'fastify'

async function startApp(
  framework: Framework,
  options: RoutemeterOptions = {},
  redis?: Redis,
): Promise<App> {
  const database = tempDatabase()
  const work = slowWork(redis)
  const all: RoutemeterOptions = {
    database,
    defaultLevel: 2,
    groupBy: () => 'tester',
    ...options,
    // A floor well above a fast request's worst case on a loaded machine, well below SLOW_MS.
    outliers: { minDuration: 100, ...options.outliers },
  }
  let handle: ReturnType<typeof bind>
  let app: unknown
  if (framework === 'koa') {
    const koa = new Koa()
    handle = bind(koa, all)
    const router = new Router()
    for (const [path, run] of Object.entries(work)) {
      router.get(`${path}/:id`, async (ctx) => {
        ctx.body = await run(ctx.query.slow as string | undefined)
      })
    }
    koa.use(router.routes())
    app = koa
  } else if (framework === 'fastify') {
    const fastify = Fastify()
    handle = bind(fastify, all)
    for (const [path, run] of Object.entries(work)) {
      fastify.get(`${path}/:id`, async (request) => run((request.query as { slow?: string }).slow))
    }
    defer(() => handle.close())
    await fastify.listen({ port: 0, host: '127.0.0.1' })
    defer(() => fastify.close())
    const url = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`
    return { url, database, handle }
  } else {
    const ex = express()
    handle = bind(ex, all)
    for (const [path, run] of Object.entries(work)) {
      ex.get(`${path}/:id`, (req, res, next) => {
        run(req.query.slow as string | undefined).then((body) => res.send(body), next)
      })
    }
    app = ex
  }
  defer(() => handle.close())
  const { url } = await listen(app)
  return { url, database, handle }
}

/** Enough fast requests for the endpoint to have a threshold (MIN_REQUESTS, then a sweep). */
async function warmUp(app: App, path: string): Promise<void> {
  for (let i = 0; i < 25; i++) await request(`${app.url}${path}/${i}`)
  // The threshold is computed by the next sweep (every 50 ms).
  await new Promise((resolve) => setTimeout(resolve, 150))
}

function outliers(database: string): Array<OutlierRow & { route: string; ctx: OutlierContext }> {
  return withDb(database, (db) =>
    (
      db
        .prepare(
          'SELECT o.*, e.route FROM outlier o JOIN endpoint e ON e.id = o.endpoint_id ORDER BY o.id',
        )
        .all() as Array<OutlierRow & { route: string }>
    ).map((row) => ({ ...row, ctx: JSON.parse(row.context) as OutlierContext })),
  )
}

/** Waits until the file holds `n` outliers (they are completed at the sweep after the request). */
async function waitForOutliers(app: App, n: number) {
  return waitFor(`${n} outlier(s) in the file`, () => {
    app.handle.flush()
    const rows = outliers(app.database)
    return rows.length >= n ? rows : undefined
  })
}

for (const framework of ['koa', 'express', 'fastify'] as const) {
  describe(`level 2 outliers on ${framework}`, () => {
    it('a request waiting on fetch is caught while it runs, with the open operation as its cause', async () => {
      const app = await startApp(framework)
      await warmUp(app, '/fetch')
      const reply = await request(`${app.url}/fetch/7?slow=1&q=x`)
      expect(reply.body).toBe('upstream')
      const [outlier] = await waitForOutliers(app, 1)
      expect(outlier!.route).toBe('/fetch/:id')
      expect(outlier!.cause).toBe('operation')
      expect(outlier!.cause_detail).toContain(`GET ${upstream}/wait?ms=${SLOW_MS}`)
      expect(outlier!.duration_us).toBeGreaterThanOrEqual(SLOW_MS * 1000)
      // Caught while running: past the threshold, before the end.
      expect(outlier!.caught_us).toBeGreaterThan(outlier!.threshold_us)
      expect(outlier!.caught_us).toBeLessThan(outlier!.duration_us)
      expect(outlier!.threshold_us).toBeGreaterThanOrEqual(100_000)
      expect(outlier!.url).toBe('/fetch/7?slow=1&q=x')
      expect(outlier!.status).toBe(200)
      expect(outlier!.method).toBe('GET')
      expect(outlier!.ctx.params).toEqual({ id: '7' })
      const [op] = outlier!.ctx.operations
      expect(op).toMatchObject({ kind: 'http', openAtCatch: true })
      expect(op!.durationMs).toBeGreaterThanOrEqual(SLOW_MS - 5)
      expect(outlier!.ctx.process.inFlight).toBeGreaterThanOrEqual(1)
      expect(outlier!.ctx.process.inFlightEndpoint).toBe(1)
      expect(outlier!.ctx.process.rssBytes).toBeGreaterThan(0)
      const user = withDb(app.database, (db) =>
        db.prepare('SELECT name FROM user_group WHERE id = ?').pluck().get(outlier!.user_group_id),
      )
      expect(user).toBe('tester')
    })

    it('a request waiting on http.request names it', async () => {
      const app = await startApp(framework)
      await warmUp(app, '/http')
      await request(`${app.url}/http/1?slow=1`)
      const [outlier] = await waitForOutliers(app, 1)
      expect(outlier!.cause).toBe('operation')
      expect(outlier!.cause_detail).toContain(`GET ${upstream}/wait?ms=${SLOW_MS}&via=http`)
    })

    it.skipIf(redisBinary === undefined)(
      'a request waiting on Redis (ioredis tracing channel) names the command',
      async () => {
        const redis = new Redis({ path: redisServer!.socket, maxRetriesPerRequest: 1 })
        defer(() => redis.quit())
        const app = await startApp(framework, {}, redis)
        await warmUp(app, '/redis')
        expect((await request(`${app.url}/redis/1?slow=1`)).body).toBe('redis')
        const [outlier] = await waitForOutliers(app, 1)
        expect(outlier!.cause).toBe('operation')
        expect(outlier!.cause_detail).toContain('blpop')
        expect(outlier!.ctx.operations[0]).toMatchObject({
          kind: 'ioredis:command',
          openAtCatch: true,
        })
      },
    )

    it('a CPU loop that blocks the event loop is named as such', async () => {
      const app = await startApp(framework)
      await warmUp(app, '/cpu')
      await request(`${app.url}/cpu/1?slow=1`)
      const [outlier] = await waitForOutliers(app, 1)
      expect(outlier!.cause).toBe('event-loop')
      expect(outlier!.ctx.loopBlockedMs).toBeGreaterThanOrEqual(SLOW_MS / 2)
      expect(outlier!.ctx.operations).toEqual([])
      // No sweep ran while the loop was blocked: caught as it ended (or by a sweep in the
      // moment between the loop's end and the response's), and counted as in flight.
      expect(outlier!.caught_us).toBeGreaterThan(outlier!.duration_us - 20_000)
      expect(outlier!.ctx.process.inFlightEndpoint).toBe(1)
    })

    it('a request waiting on a timer is a wait on nothing Routemeter sees', async () => {
      const app = await startApp(framework)
      await warmUp(app, '/timer')
      await request(`${app.url}/timer/1?slow=1`)
      const [outlier] = await waitForOutliers(app, 1)
      expect(outlier!.cause).toBe('wait')
      expect(outlier!.caught_us).toBeLessThan(outlier!.duration_us)
      expect(outlier!.ctx.loopBlockedMs).toBeLessThan(SLOW_MS / 4)
    })
  })
}

describe('level 2 outliers', () => {
  it('fast requests, and requests of level 1 endpoints, give none', async () => {
    const app = await startApp('koa')
    await warmUp(app, '/fetch')
    for (let i = 0; i < 30; i++) await request(`${app.url}/fetch/${i}`)
    const desktop = openDb(app.database)
    desktop.prepare("UPDATE endpoint SET monitor_level = 1 WHERE route = '/timer/:id'").run()
    await waitFor('the level to reach the collector', () => {
      ;(app.handle as unknown as { refreshLevels(): void }).refreshLevels()
      return true
    })
    await warmUp(app, '/timer')
    await request(`${app.url}/timer/1?slow=1`)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(app.handle.flush()).toBe(true)
    expect(outliers(app.database)).toEqual([])
  })

  it('an endpoint needs 20 requests before anything of it is an outlier, and a floor of minDuration', async () => {
    // A floor of 150 ms: fast requests take about 1 ms, so 2.5 x the median is far below it.
    const app = await startApp('koa', { outliers: { minDuration: 150 } })
    for (let i = 0; i < 10; i++) await request(`${app.url}/timer/${i}`)
    await new Promise((resolve) => setTimeout(resolve, 150))
    // Ten requests: no threshold yet, even for a slow one.
    await request(`${app.url}/timer/1?slow=1`)
    await warmUp(app, '/timer')
    // Past 2.5 x the median but under the floor: not an outlier.
    await request(`${app.url}/timer/3?slow=40`)
    await new Promise((resolve) => setTimeout(resolve, 150))
    app.handle.flush()
    expect(outliers(app.database)).toEqual([])
    await request(`${app.url}/timer/2?slow=1`)
    const [outlier] = await waitForOutliers(app, 1)
    expect(outlier!.url).toBe('/timer/2?slow=1')
    expect(outlier!.threshold_us).toBe(150_000)
  })

  it('two concurrent slow requests of different endpoints keep their own operations', async () => {
    const app = await startApp('express')
    await warmUp(app, '/fetch')
    await warmUp(app, '/http')
    await Promise.all([request(`${app.url}/fetch/1?slow=1`), request(`${app.url}/http/2?slow=1`)])
    const rows = await waitForOutliers(app, 2)
    const byRoute = new Map(rows.map((row) => [row.route, row]))
    const fetchOps = byRoute.get('/fetch/:id')!.ctx.operations
    const httpOps = byRoute.get('/http/:id')!.ctx.operations
    expect(fetchOps).toHaveLength(1)
    expect(httpOps).toHaveLength(1)
    expect(fetchOps[0]!.target).not.toContain('via=http')
    expect(httpOps[0]!.target).toContain('via=http')
    expect(byRoute.get('/fetch/:id')!.ctx.process.inFlight).toBeGreaterThanOrEqual(2)
  })

  it('operations: false keeps outliers without their operations (no async context)', async () => {
    const app = await startApp('express', { outliers: { operations: false } })
    await warmUp(app, '/fetch')
    await request(`${app.url}/fetch/1?slow=1`)
    const [outlier] = await waitForOutliers(app, 1)
    expect(outlier!.ctx.operations).toEqual([])
    expect(outlier!.cause).toBe('wait')
    expect(outlier!.caught_us).toBeLessThan(outlier!.duration_us)
  })

  it('headers and query parameters that carry secrets are stored redacted', async () => {
    const app = await startApp('koa', { outliers: { redact: ['X-Tenant-Secret', 'token'] } })
    await warmUp(app, '/timer')
    await request(`${app.url}/timer/1?slow=1&token=abc123&keep=yes`, {
      headers: {
        authorization: 'Bearer sekrit',
        cookie: 'session=sekrit',
        'x-api-key': 'sekrit',
        'x-tenant-secret': 'sekrit',
        'x-request-id': 'visible',
      },
    })
    const [outlier] = await waitForOutliers(app, 1)
    expect(outlier!.url).toBe('/timer/1?slow=1&token=[redacted]&keep=yes')
    const headers = outlier!.ctx.headers
    for (const name of ['authorization', 'cookie', 'x-api-key', 'x-tenant-secret']) {
      expect(headers[name]).toBe('[redacted]')
    }
    expect(headers['x-request-id']).toBe('visible')
    expect(outlier!.context).not.toContain('sekrit')
    expect(outlier!.context).not.toContain('abc123')
  })

  it('at most maxPerMinute outliers are captured per endpoint', async () => {
    // The limit counts per minute of the clock: start well inside one.
    const intoMinute = Date.now() % 60_000
    if (intoMinute > 50_000)
      await new Promise((resolve) => setTimeout(resolve, 60_500 - intoMinute))
    const app = await startApp('koa', { outliers: { maxPerMinute: 2 } })
    await warmUp(app, '/timer')
    await Promise.all([1, 2, 3, 4, 5].map((i) => request(`${app.url}/timer/${i}?slow=1`)))
    await waitForOutliers(app, 2)
    await new Promise((resolve) => setTimeout(resolve, 200))
    app.handle.flush()
    expect(outliers(app.database)).toHaveLength(2)
  })

  it('a level changed from 2 to 1 by the desktop app stops capturing within 2 s', async () => {
    const app = await startApp('express', { levelPollInterval: 200 })
    await warmUp(app, '/timer')
    await request(`${app.url}/timer/1?slow=1`)
    await waitForOutliers(app, 1)
    const desktop = openDb(app.database)
    desktop.prepare("UPDATE endpoint SET monitor_level = 1 WHERE route = '/timer/:id'").run()
    const changedAt = Date.now()
    await new Promise((resolve) => setTimeout(resolve, 2000 - (Date.now() - changedAt)))
    await request(`${app.url}/timer/2?slow=1`)
    await new Promise((resolve) => setTimeout(resolve, 200))
    app.handle.flush()
    expect(outliers(app.database)).toHaveLength(1)
  })

  it('a bad outliers option is a TypeError that names it', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ factor: 1 }, /"outliers.factor" must be a number above 1, got number 1/],
      [{ minDuration: -1 }, /"outliers.minDuration"/],
      [{ maxPerMinute: 1.5 }, /"outliers.maxPerMinute" must be a positive integer/],
      [{ redact: 'authorization' }, /"outliers.redact" must be an array of names/],
      [{ channels: [''] }, /"outliers.channels"/],
      [{ operations: 'no' }, /"outliers.operations" must be a boolean/],
      [{ sweepInterval: 5 }, /"outliers.sweepInterval" must be an integer number of milliseconds/],
      [{ factr: 2 }, /unknown option "outliers.factr"/],
      ['yes', /option "outliers" must be an object/],
    ]
    for (const [outliersOption, message] of bad) {
      expect(() =>
        bind(new Koa(), { database: tempDatabase(), outliers: outliersOption as never }),
      ).toThrow(message)
    }
  })
})

describe('migration 0006', () => {
  it('a schema-5 file gets the outlier table and keeps its requests', async () => {
    const app = await startApp('koa')
    await warmUp(app, '/fetch')
    app.handle.close()
    const path = app.database
    const { default: Database } = await import('better-sqlite3')
    const { migrate } = await import('../../collector/src/schema/migrate.js')
    const { downgrade } = await import('../fixtures/metrics-files.js')
    let db = new Database(path)
    downgrade(db, 5)
    const requests = db.prepare('SELECT count(*) FROM request').pluck().get()
    expect(
      db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'outlier'").pluck().get(),
    ).toBe(0)
    db.close()
    db = new Database(path)
    defer(() => db.close())
    expect(migrate(db)).toBe(5)
    expect(db.prepare('SELECT count(*) FROM request').pluck().get()).toBe(requests)
    expect(db.prepare('SELECT count(*) FROM outlier').pluck().get()).toBe(0)
    expect(
      db
        .prepare(
          "SELECT name FROM sqlite_schema WHERE tbl_name = 'outlier' AND type = 'index' ORDER BY 1",
        )
        .pluck()
        .all(),
    ).toEqual(['outlier_endpoint_time', 'outlier_time'])
  })
})

describe('createCollector at level 2', () => {
  it("track() enters the request's context: a plain http server's fetch is its outlier's operation", async () => {
    const { createCollector } = await import('routemeter')
    const database = tempDatabase()
    const collector = createCollector({
      database,
      defaultLevel: 2,
      outliers: { minDuration: 100 },
    })
    defer(() => collector.close())
    const { url } = await listen((req: IncomingMessage, res: ServerResponse) => {
      collector.track(req, res)
      collector.setRoute(req, '/plain')
      const slow = (req.url ?? '').includes('slow=1')
      void (async () => {
        if (slow) await (await fetch(`${upstream}/wait?ms=${SLOW_MS}&via=plain`)).text()
        res.end('plain')
      })()
    })
    for (let i = 0; i < 25; i++) await request(`${url}/plain`)
    await new Promise((resolve) => setTimeout(resolve, 150))
    expect((await request(`${url}/plain?slow=1`)).body).toBe('plain')
    const rows = await waitFor('the plain server’s outlier', () => {
      collector.flush()
      const found = outliers(database)
      return found.length > 0 ? found : undefined
    })
    expect(rows[0]!.cause).toBe('operation')
    expect(rows[0]!.ctx.operations[0]!.target).toContain('via=plain')
  })
})
