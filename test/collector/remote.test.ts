/*
 * The collector's remote API, over real HTTP: Koa 2 and 3 and
 * Express 4 and 5 apps in their own processes (fixtures/remote-service.ts),
 * snapshots gunzipped and opened with better-sqlite3 and compared with the
 * server's file; and in this process, the options and the middleware forms.
 */
import express from 'express'
import Koa from 'koa'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  bind,
  createCollector,
  express as expressMiddleware,
  koa as koaMiddleware,
} from 'routemeter'
import { SCHEMA_VERSION } from 'routemeter/schema'
import {
  ALL_FAILURES,
  CLIENT_FAILURES,
  clientKey,
  FailureThrottle,
  WINDOW_MS,
} from '../../collector/src/remote/auth.js'
import { INLINE_STEPS, runTask } from '../../collector/src/remote/tasks.js'
import { MetricsStore, type PendingRequest } from 'routemeter/writer'
import {
  AUTH,
  fetchRaw,
  RemoteService,
  snapshotDirs,
  TOKEN,
  type Fetched,
} from '../fixtures/remote-service-client.js'
import {
  countRequests,
  defer,
  listen,
  makeTempDir,
  removeTempDirs,
  tempDatabase,
  waitFor,
  withDb,
} from './helpers.js'

afterAll(removeTempDirs)

const json = (reply: Fetched): unknown => JSON.parse(reply.body.toString('utf8'))

/** Tables of a metrics file (SQLite's own excepted). */
function tableNames(path: string): string[] {
  return withDb(path, (db) =>
    db
      .prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name",
      )
      .pluck()
      .all(),
  ) as string[]
}

/** A table's rows as JSON, sorted: comparable whatever the table's key. */
function rowsOf(path: string, table: string, where = ''): string[] {
  return withDb(path, (db) =>
    (db.prepare(`SELECT * FROM "${table}" ${where}`).all() as unknown[])
      .map((row) => JSON.stringify(row))
      .sort(),
  )
}

const isRollup = (table: string): boolean => /rollup/i.test(table)

/** Gunzips a snapshot reply into a file of its own. */
function saveSnapshot(reply: Fetched): string {
  const path = join(makeTempDir(), 'copy.db')
  writeFileSync(path, gunzipSync(reply.body))
  return path
}

// ---------------------------------------------------------------- a real service per framework

describe.each(['koa', 'koa2', 'express', 'express4'])('remote API of a %s service', (framework) => {
  let service: RemoteService
  /** requests of the app's own routes sent so far: exactly what the file may hold */
  let appRequests = 0

  async function traffic(paths: string[]): Promise<void> {
    for (const path of paths) {
      expect(await service.get(path)).toBe(200)
      appRequests++
    }
  }

  const written = (): Promise<number> =>
    waitFor(`${appRequests} requests in the file`, () => {
      const count = countRequests(service.database)
      return count === appRequests && count
    })

  beforeAll(async () => {
    service = await new RemoteService(framework).start()
    await traffic([
      ...Array.from({ length: 30 }, (_, i) => `/books/${i % 7}`),
      '/books/',
      '/books/',
    ])
    await written()
  })

  afterAll(async () => {
    await service?.stop()
    expect(service?.errors ?? []).toEqual([])
  })

  it('GET /info describes the server file', async () => {
    const reply = await service.remote('/info')
    expect(reply.status).toBe(200)
    expect(reply.headers['content-type']).toMatch(/^application\/json/)
    const facts = withDb(service.database, (db) => ({
      requests: db.prepare('SELECT count(*) FROM request').pluck().get(),
      endpoints: db.prepare('SELECT count(*) FROM endpoint').pluck().get(),
      firstRequest: db.prepare('SELECT min(time) FROM request').pluck().get(),
      lastRequest: db.prepare('SELECT max(time) FROM request').pluck().get(),
      lastRequestId: db.prepare('SELECT max(id) FROM request').pluck().get(),
      fileBytes:
        (db.pragma('page_count', { simple: true }) as number) *
        (db.pragma('page_size', { simple: true }) as number),
    }))
    expect(json(reply)).toEqual({
      schemaVersion: SCHEMA_VERSION,
      node: `node-${framework}`,
      appVersion: 'remote-test',
      ...facts,
    })
    expect(facts.requests).toBe(appRequests)
  })

  it('GET /snapshot is a gzip of a file with the same rows as the server file', async () => {
    const reply = await service.remote('/snapshot')
    expect(reply.status).toBe(200)
    expect(reply.headers['content-type']).toBe('application/gzip')
    expect(Number(reply.headers['content-length'])).toBe(reply.body.length)
    expect(reply.headers['x-routemeter-node']).toBe(`node-${framework}`)
    expect(Number(reply.headers['x-routemeter-schema'])).toBe(SCHEMA_VERSION)
    expect(reply.headers['x-routemeter-since']).toBeUndefined()
    const copy = saveSnapshot(reply)
    expect(Number(reply.headers['x-routemeter-uncompressed-length'])).toBe(
      gunzipSync(reply.body).length,
    )

    const tables = tableNames(service.database)
    expect(tables).toEqual(expect.arrayContaining(['endpoint', 'node', 'request', 'version']))
    expect(tableNames(copy)).toEqual(tables)
    for (const table of tables) {
      expect(rowsOf(copy, table), table).toEqual(rowsOf(service.database, table))
    }
    expect(rowsOf(copy, 'request')).toHaveLength(appRequests)
    const lastId = withDb(service.database, (db) =>
      db.prepare('SELECT max(id) FROM request').pluck().get(),
    )
    expect(Number(reply.headers['x-routemeter-last-request-id'])).toBe(lastId)
    withDb(copy, (db) => {
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
      expect(db.pragma('application_id', { simple: true })).toBe(0x524d5452)
      // A file of its own: no WAL to carry along.
      expect(db.pragma('journal_mode', { simple: true })).toBe('delete')
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok')
    })
    // Removed once the response has ended (just after the client got its last byte).
    await waitFor('the snapshot folder to be removed', () => snapshotDirs(service.tmp).length === 0)
  })

  it('GET /snapshot?since=<id> holds every other table in full and only the newer requests', async () => {
    const ids = withDb(
      service.database,
      (db) => db.prepare('SELECT id FROM request ORDER BY id').pluck().all() as number[],
    )
    const since = ids[Math.floor(ids.length / 2)]!
    const reply = await service.remote(`/snapshot?since=${since}`)
    expect(reply.status).toBe(200)
    expect(reply.headers['content-type']).toBe('application/gzip')
    expect(Number(reply.headers['x-routemeter-since'])).toBe(since)
    expect(Number(reply.headers['x-routemeter-last-request-id'])).toBe(ids.at(-1))
    expect(Number(reply.headers['content-length'])).toBe(reply.body.length)
    const copy = saveSnapshot(reply)
    expect(Number(reply.headers['x-routemeter-uncompressed-length'])).toBe(
      gunzipSync(reply.body).length,
    )

    const newer = rowsOf(service.database, 'request', `WHERE id > ${since}`)
    expect(newer.length).toBe(ids.length - ids.indexOf(since) - 1)
    expect(rowsOf(copy, 'request')).toEqual(newer)
    const tables = tableNames(service.database)
    expect(tableNames(copy)).toEqual(tables)
    for (const table of tables) {
      if (table === 'request') continue
      if (isRollup(table)) expect(rowsOf(copy, table), table).toEqual([])
      else if (table === 'meta') {
        // the rollups' watermark goes with the rollups
        const meta = rowsOf(service.database, 'meta').filter(
          (row) => !/"key":"[^"]*rollup/.test(row),
        )
        expect(rowsOf(copy, 'meta')).toEqual(meta)
      } else expect(rowsOf(copy, table), table).toEqual(rowsOf(service.database, table))
    }
    withDb(copy, (db) => {
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok')
    })

    const nothingNew = await service.remote(`/snapshot?since=${ids.at(-1)}`)
    expect(rowsOf(saveSnapshot(nothingNew), 'request')).toEqual([])
    for (const bad of ['-1', 'abc', '1.5', '']) {
      const refused = await service.remote(`/snapshot?since=${bad}`)
      expect(refused.status, bad).toBe(400)
      expect(json(refused)).toEqual({ error: expect.stringMatching(/since/) })
    }
  })

  it('concurrent snapshots while the app serves are each a consistent copy', async () => {
    let serving = true
    const load = (async () => {
      for (let i = 0; serving; i++) await traffic([`/books/${i % 5}`])
    })()
    const replies = await Promise.all([
      service.remote('/snapshot'),
      service.remote('/snapshot'),
      service.remote('/snapshot?since=3'),
      service.remote('/snapshot'),
    ])
    serving = false
    await load
    await written()
    for (const reply of replies) {
      expect(reply.status).toBe(200)
      const copy = saveSnapshot(reply)
      const last = Number(reply.headers['x-routemeter-last-request-id'])
      const since = Number(reply.headers['x-routemeter-since'] ?? 0)
      // Consistent: exactly the server's requests up to the copy's last id, none missing.
      expect(rowsOf(copy, 'request')).toEqual(
        rowsOf(service.database, 'request', `WHERE id > ${since} AND id <= ${last}`),
      )
      withDb(copy, (db) => expect(db.pragma('integrity_check', { simple: true })).toBe('ok'))
    }
    await waitFor(
      'the snapshot folders to be removed',
      () => snapshotDirs(service.tmp).length === 0,
    )
  })

  it('refuses a missing or wrong token with 401 and no data', async () => {
    const wrong = [
      undefined,
      'Bearer',
      `Bearer ${TOKEN.slice(0, -1)}x`,
      `Bearer ${TOKEN}x`,
      `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`,
    ]
    const route = '/books/:id'
    const levelBefore = withDb(service.database, (db) =>
      db
        .prepare("SELECT monitor_level FROM endpoint WHERE route = ? AND method = 'GET'")
        .pluck()
        .get(route),
    )
    // Each from its own client address: a client's first failures are not slowed.
    let client = 10
    for (const authorization of wrong) {
      for (const [method, path] of [
        ['GET', '/info'],
        ['GET', '/snapshot'],
        ['GET', '/snapshot?since=0'],
        ['POST', '/levels'],
        ['GET', '/nothing-here'],
      ] as const) {
        const reply = await fetchRaw(`${service.url}/routemeter${path}`, {
          method,
          headers: authorization === undefined ? {} : { authorization },
          body: method === 'POST' ? JSON.stringify({ method: 'GET', route, level: 0 }) : undefined,
          localAddress: `127.0.1.${client++}`,
        })
        expect(reply.status, `${authorization} ${path}`).toBe(401)
        expect(reply.headers['www-authenticate']).toBe('Bearer')
        expect(reply.headers['content-type']).toMatch(/^application\/json/)
        const body = json(reply) as Record<string, unknown>
        expect(Object.keys(body)).toEqual(['error'])
        expect(body.error).toMatch(authorization?.startsWith('Bearer ') ? /wrong token/ : /missing/)
        expect(reply.body.length).toBeLessThan(200)
      }
    }
    const levelAfter = withDb(service.database, (db) =>
      db
        .prepare("SELECT monitor_level FROM endpoint WHERE route = ? AND method = 'GET'")
        .pluck()
        .get(route),
    )
    expect(levelAfter).toBe(levelBefore)
    expect(snapshotDirs(service.tmp)).toEqual([])
  })

  it('limits failed tokens from one client per minute, concurrent guesses included', async () => {
    const guesses = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        fetchRaw(`${service.url}/routemeter/info`, {
          headers: { authorization: `Bearer guess-number-${i}-0123456789` },
          localAddress: '127.0.0.2',
        }),
      ),
    )
    const statuses = guesses.map((reply) => reply.status)
    expect(statuses.filter((status) => status === 401)).toHaveLength(CLIENT_FAILURES)
    expect(statuses.filter((status) => status === 429)).toHaveLength(60 - CLIENT_FAILURES)
    const limited = guesses.find((reply) => reply.status === 429)!
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60)
    // Past the limit even the right token is not looked at: a guess learns nothing.
    const right = await fetchRaw(`${service.url}/routemeter/info`, {
      headers: AUTH,
      localAddress: '127.0.0.2',
    })
    expect(right.status).toBe(429)
    // Another client is neither limited nor slowed.
    const other = await fetchRaw(`${service.url}/routemeter/info`, {
      headers: AUTH,
      localAddress: '127.0.0.3',
    })
    expect(other.status).toBe(200)
  })

  it('POST /levels changes a monitor level that the next requests follow', async () => {
    const route = '/books/:id'
    const endpoint = () =>
      withDb(
        service.database,
        (db) =>
          db
            .prepare(
              `SELECT e.monitor_level AS level, e.last_requested AS lastRequested,
                      (SELECT count(*) FROM request r WHERE r.endpoint_id = e.id) AS requests
               FROM endpoint e WHERE e.method = 'GET' AND e.route = ?`,
            )
            .get(route) as { level: number; lastRequested: number; requests: number },
      )
    const post = (body: unknown) =>
      service.remote('/levels', { method: 'POST', body: JSON.stringify(body) })

    const reply = await post({ method: 'GET', route, level: 0 })
    expect(reply.status).toBe(200)
    expect(json(reply)).toEqual({ method: 'GET', route, level: 0 })
    const before = endpoint()
    expect(before.level).toBe(0)

    // The service polls levels every 10 minutes: only the API's refresh can apply it this soon.
    await traffic(['/books/41', '/books/42', '/books/43'])
    appRequests -= 3 // level 0: not recorded
    await waitFor(
      'the endpoint to be touched',
      () => endpoint().lastRequested > before.lastRequested,
    )
    expect(endpoint().requests).toBe(before.requests)

    expect((await post({ method: 'get', route, level: 1 })).status).toBe(200)
    await traffic(['/books/44'])
    await written()
    expect(endpoint()).toMatchObject({ level: 1, requests: before.requests + 1 })

    const refusals: Array<[unknown, number, RegExp]> = [
      [{ method: 'GET', route: '/nowhere/:id', level: 0 }, 404, /no endpoint GET \/nowhere/],
      [{ method: 'GET', route, level: 4 }, 400, /level/],
      [{ method: 'GET', route, level: '1' }, 400, /level/],
      [{ method: 'GET', level: 1 }, 400, /route/],
      [{ route, level: 1 }, 400, /method/],
      [[1, 2], 400, /JSON object/],
      [{ method: 'GET', route, level: 2, padding: 'x'.repeat(17_000) }, 400, /at most 16384 bytes/],
    ]
    for (const [body, status, message] of refusals) {
      const refused = await post(body)
      expect(refused.status, JSON.stringify(body).slice(0, 80)).toBe(status)
      expect(json(refused)).toEqual({ error: expect.stringMatching(message) })
    }
    const notJson = await service.remote('/levels', { method: 'POST', body: '{"method": ' })
    expect(notJson.status).toBe(400)
    expect(json(notJson)).toEqual({ error: 'the body is not valid JSON' })
    const wrongMethod = await service.remote('/levels')
    expect(wrongMethod.status).toBe(405)
    expect(wrongMethod.headers.allow).toBe('POST')
    expect((await service.remote('/snapshot', { method: 'POST' })).status).toBe(405)
    expect((await service.remote('/elsewhere')).status).toBe(404)
    expect(endpoint().level).toBe(1)
  })

  it('an interrupted download leaves the service up and no temporary file', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${service.url}/routemeter/snapshot`, { headers: AUTH, agent: false })
      req.on('response', (res) => {
        expect(res.statusCode).toBe(200)
        req.destroy()
        resolve()
      })
      req.on('error', (error) => {
        if (!req.destroyed) reject(error)
      })
      req.end()
    })
    expect((await service.remote('/info')).status).toBe(200)
    await traffic(['/books/1'])
    await waitFor('the snapshot folder to be removed', () => snapshotDirs(service.tmp).length === 0)
  })

  it('records none of its own requests, only the app traffic', async () => {
    const count = await written()
    expect(count).toBe(appRequests)
    const endpoints = withDb(
      service.database,
      (db) => db.prepare('SELECT method, route FROM endpoint').all() as Array<{ route: string }>,
    )
    expect(
      endpoints.filter((e) => e.route.includes('routemeter') || e.route === '(unmatched)'),
    ).toEqual([])
  })

  // Last in this block: it spends the service's failures for the minute.
  it('limits all clients together against rotating addresses, and the known user keeps working', async () => {
    const statuses: number[] = []
    for (let i = 0; i < ALL_FAILURES + 20; i++) {
      const reply = await fetchRaw(`${service.url}/routemeter/info`, {
        headers: { authorization: 'Bearer not-the-token-at-all' },
        localAddress: `127.0.${2 + Math.floor(i / 250)}.${1 + (i % 250)}`,
      })
      statuses.push(reply.status)
    }
    // Failures earlier in this minute (the tests above) count too.
    const checked = statuses.filter((status) => status === 401).length
    expect(checked).toBeLessThanOrEqual(ALL_FAILURES)
    expect(statuses.slice(-20).every((status) => status === 429)).toBe(true)
    // 127.0.0.1 sent the right token before: it is answered at once.
    expect((await service.remote('/info')).status).toBe(200)
  })
})

// ---------------------------------------------------------------- in this process

describe('remote options', () => {
  const saved = process.env.ROUTEMETER_TOKEN
  afterAll(() => {
    if (saved === undefined) delete process.env.ROUTEMETER_TOKEN
    else process.env.ROUTEMETER_TOKEN = saved
  })

  it('refuses remote access without a usable token, and other bad values, naming the option', () => {
    delete process.env.ROUTEMETER_TOKEN
    const database = tempDatabase()
    const bad: Array<[unknown, RegExp]> = [
      [true, /"remote\.token" is required.*ROUTEMETER_TOKEN/],
      [{}, /"remote\.token" is required/],
      [{ prefix: '/metrics' }, /"remote\.token" is required/],
      [{ token: 'short-token' }, /"remote\.token" must be at least 16 characters \(got 11\)/],
      [{ token: 42 }, /"remote\.token" must be a string/],
      [{ token: 'my secret token 12345' }, /"remote\.token" must not contain white space/],
      [{ token: ' '.repeat(16) }, /"remote\.token" must not contain white space/],
      [{ token: 'a-token-of-20-chars\n' }, /"remote\.token" must not contain white space/],
      [{ token: TOKEN, prefix: 'routemeter' }, /"remote\.prefix"/],
      [{ token: TOKEN, prefix: '/routemeter/' }, /"remote\.prefix"/],
      [{ token: TOKEN, prefix: '/a?b' }, /"remote\.prefix"/],
      [{ token: TOKEN, prefix: '/' }, /"remote\.prefix"/],
      [{ token: TOKEN, tokn: TOKEN }, /unknown option "remote\.tokn"/],
      ['yes', /option "remote" must be true or an object/],
      [null, /option "remote" must be true or an object/],
    ]
    for (const [remote, message] of bad) {
      const options = { database, remote } as never
      expect(() => bind(express(), options), JSON.stringify(remote)).toThrow(TypeError)
      expect(() => bind(express(), options)).toThrow(message)
      expect(() => bind(new Koa(), options)).toThrow(message)
      expect(() => koaMiddleware(options)).toThrow(message)
      expect(() => expressMiddleware(options)).toThrow(message)
      expect(() => createCollector(options)).toThrow(message)
    }
    process.env.ROUTEMETER_TOKEN = 'too-short'
    expect(() => bind(express(), { database, remote: true })).toThrow(
      /at least 16 characters \(got 9, from ROUTEMETER_TOKEN\)/,
    )
    // Refused before anything was opened or created.
    expect(existsSync(database)).toBe(false)
  })

  it('counts failed tokens by the address the app trusts: X-Forwarded-For behind a trusted proxy only', async () => {
    const wrong = { authorization: 'Bearer not-the-token-at-all' }
    const statusesOf = async (url: string, forwardedFor: (i: number) => string) => {
      const statuses: number[] = []
      for (let i = 0; i <= CLIENT_FAILURES; i++) {
        const headers = { ...wrong, 'x-forwarded-for': forwardedFor(i) }
        statuses.push((await fetchRaw(`${url}/routemeter/info`, { headers })).status)
      }
      return statuses
    }
    const limitedAt = [...Array(CLIENT_FAILURES).fill(401), 429]
    const apps = [
      ['express', () => express().set('trust proxy', 'loopback'), () => express()],
      ['koa', () => Object.assign(new Koa(), { proxy: true }), () => new Koa()],
    ] as const
    for (const [name, trusting, plain] of apps) {
      const trusted = trusting()
      const trustedHandle = bind(trusted, { database: tempDatabase(), remote: { token: TOKEN } })
      defer(() => trustedHandle.close())
      const { url } = await listen(trusted)
      // Each client behind the proxy has its own count...
      expect(await statusesOf(url, (i) => `198.51.100.${i}`), name).toEqual(
        Array(CLIENT_FAILURES + 1).fill(401),
      )
      // ...and one client is limited by its own.
      expect(await statusesOf(url, () => '203.0.113.7'), name).toEqual(limitedAt)
      const untrusted = plain()
      const plainHandle = bind(untrusted, { database: tempDatabase(), remote: { token: TOKEN } })
      defer(() => plainHandle.close())
      const direct = await listen(untrusted)
      // An app that trusts no proxy counts the socket's address, whatever the header says.
      expect(await statusesOf(direct.url, (i) => `198.51.100.${i}`), name).toEqual(limitedAt)
    }
  })

  it('takes the token from ROUTEMETER_TOKEN, and serves under another prefix', async () => {
    process.env.ROUTEMETER_TOKEN = TOKEN
    const database = tempDatabase()
    const app = express()
    const handle = bind(app, { database, remote: { prefix: '/ops/metrics' } })
    defer(() => handle.close())
    app.get('/routemeter/info', (_req, res) => {
      res.send('the app')
    })
    const { url } = await listen(app)
    const info = await fetchRaw(`${url}/ops/metrics/info`, { headers: AUTH })
    expect(info.status).toBe(200)
    expect(json(info)).toMatchObject({ schemaVersion: SCHEMA_VERSION, node: handle.node })
    // The default prefix is the app's again.
    expect((await fetchRaw(`${url}/routemeter/info`)).body.toString()).toBe('the app')
    expect((await fetchRaw(`${url}/ops/metricsinfo`, { headers: AUTH })).status).toBe(404)
  })
})

describe('the remote API in the middleware forms and plain http', () => {
  it('koa() middleware answers before the app and does not record it', async () => {
    const database = tempDatabase()
    const app = new Koa()
    const middleware = koaMiddleware({ database, remote: { token: TOKEN } })
    defer(() => middleware.close())
    app.use(middleware)
    app.use((ctx) => {
      ctx.body = 'app'
    })
    const { url } = await listen(app)
    expect((await fetchRaw(`${url}/hello`)).body.toString()).toBe('app')
    middleware.flush()
    const info = await fetchRaw(`${url}/routemeter/info`, { headers: AUTH })
    expect(info.status).toBe(200)
    expect(json(info)).toMatchObject({ requests: 1 })
    expect((await fetchRaw(`${url}/routemeter/info`)).status).toBe(401)
    const snapshot = await fetchRaw(`${url}/routemeter/snapshot`, { headers: AUTH })
    expect(rowsOf(saveSnapshot(snapshot), 'request')).toEqual(rowsOf(database, 'request'))
    middleware.flush()
    expect(countRequests(database)).toBe(1)
  })

  it('express() middleware after a JSON body parser takes the parsed level change', async () => {
    const database = tempDatabase()
    const app = express()
    app.use(express.json())
    const middleware = expressMiddleware({ database, remote: { token: TOKEN } })
    defer(() => middleware.close())
    app.use(middleware)
    app.get('/books/:id', (req, res) => {
      res.json({ id: req.params.id })
    })
    const { url } = await listen(app)
    expect((await fetchRaw(`${url}/books/1`)).status).toBe(200)
    middleware.flush()
    const reply = await fetchRaw(`${url}/routemeter/levels`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ method: 'GET', route: '/books/:id', level: 3 }),
    })
    expect(reply.status).toBe(200)
    expect(json(reply)).toEqual({ method: 'GET', route: '/books/:id', level: 3 })
    expect(
      withDb(database, (db) => db.prepare('SELECT monitor_level FROM endpoint').pluck().all()),
    ).toEqual([3])
    middleware.flush()
    expect(countRequests(database)).toBe(1)
  })

  it('createCollector().handleRemote answers the remote API in a plain http handler', async () => {
    const database = tempDatabase()
    const collector = createCollector({ database, remote: { token: TOKEN } })
    defer(() => collector.close())
    const { url } = await listen((req: IncomingMessage, res: ServerResponse) => {
      collector.track(req, res)
      if (collector.handleRemote(req, res)) return
      collector.setRoute(req, '/hello')
      res.end('hello')
    })
    expect((await fetchRaw(`${url}/hello`)).body.toString()).toBe('hello')
    collector.flush()
    expect(json(await fetchRaw(`${url}/routemeter/info`, { headers: AUTH }))).toMatchObject({
      requests: 1,
      endpoints: 1,
    })
    collector.flush()
    expect(countRequests(database)).toBe(1)
    const off = createCollector({ database: tempDatabase() })
    defer(() => off.close())
    expect(off.handleRemote({ url: '/routemeter/info' } as never, {} as never)).toBe(false)
  })
})

describe('snapshot folders of a process that was killed', () => {
  it('are removed by the next snapshot, those of live processes are not', async () => {
    const service = new RemoteService('koa')
    defer(() => service.stop())
    await service.start()
    // A process id that is no longer anyone's: a child that has exited.
    const gone = spawn(process.execPath, ['-e', ''])
    await new Promise((resolve) => gone.once('exit', resolve))
    const orphan = join(service.tmp, `routemeter-snapshot-${gone.pid}-AbC123`)
    const alive = join(service.tmp, `routemeter-snapshot-${process.pid}-XyZ789`)
    for (const dir of [orphan, alive]) {
      mkdirSync(dir)
      writeFileSync(join(dir, 'metrics.db.gz'), 'x')
    }
    expect((await service.remote('/snapshot')).status).toBe(200)
    expect(existsSync(orphan)).toBe(false)
    expect(existsSync(alive)).toBe(true)
  })
})

describe('a file that cannot be opened', () => {
  it('answers 503 with the reason, and the app keeps serving', async () => {
    // A file where the database's folder should be: the collector cannot create the file.
    const blocked = join(makeTempDir(), 'not-a-folder')
    writeFileSync(blocked, 'x')
    const errors: Error[] = []
    const app = express()
    const handle = bind(app, {
      database: join(blocked, 'metrics.db'),
      remote: { token: TOKEN },
      onError: (error) => errors.push(error),
    })
    defer(() => handle.close())
    app.get('/hello', (_req, res) => {
      res.send('hello')
    })
    const { url } = await listen(app)
    expect((await fetchRaw(`${url}/hello`)).body.toString()).toBe('hello')
    for (const [method, path, body] of [
      ['GET', '/info', undefined],
      ['GET', '/snapshot', undefined],
      ['GET', '/snapshot?since=0', undefined],
      ['POST', '/levels', JSON.stringify({ method: 'GET', route: '/hello', level: 0 })],
    ] as const) {
      const reply = await fetchRaw(`${url}/routemeter${path}`, { method, headers: AUTH, body })
      expect(reply.status, path).toBe(503)
      expect(json(reply)).toEqual({
        error: expect.stringMatching(/metrics file .* does not exist/),
      })
    }
    expect(errors.length).toBeGreaterThan(0) // the collector's own report of the file
  })
})

describe('failure throttle', () => {
  it('counts failures per client in a window of a minute, and all clients together', () => {
    const throttle = new FailureThrottle()
    const now = 1_000_000
    const results = Array.from({ length: CLIENT_FAILURES + 2 }, () =>
      throttle.attempt('10.0.0.1', now),
    )
    expect(results.slice(0, CLIENT_FAILURES)).toEqual(Array(CLIENT_FAILURES).fill(0))
    expect(results.slice(CLIENT_FAILURES)).toEqual([WINDOW_MS, WINDOW_MS])
    // A success is no failure, and resets nobody else.
    expect(throttle.attempt('10.0.0.2', now)).toBe(0)
    throttle.succeed('10.0.0.2', now)
    expect(throttle.attempt('10.0.0.1', now + 1000)).toBe(WINDOW_MS - 1000)
    // The next minute starts afresh.
    expect(throttle.attempt('10.0.0.1', now + WINDOW_MS)).toBe(0)
    // Rotating addresses: the global limit, which lets the known client through.
    const later = now + 2 * WINDOW_MS
    let refused = 0
    for (let i = 0; i < ALL_FAILURES + 50; i++)
      if (throttle.attempt(`10.1.${i >> 8}.${i & 255}`, later) > 0) refused++
    expect(refused).toBe(50)
    expect(throttle.attempt('10.9.9.9', later)).toBeGreaterThan(0)
    expect(throttle.attempt('10.0.0.2', later)).toBe(0)
  })

  it('keys IPv6 clients by their /64 and IPv4 in IPv6 as IPv4', () => {
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(clientKey('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64')
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(clientKey('::1')).toBe('0:0:0:0::/64')
    expect(clientKey('::ffff:203.0.113.9')).toBe('203.0.113.9')
    expect(clientKey('203.0.113.9')).toBe('203.0.113.9')
  })
})

describe('the figures of GET /info', () => {
  it('come from the rollups and equal a scan of the requests: late requests, and rows the rollups do not count yet', async () => {
    const path = tempDatabase('info.db')
    const endpoints = ['/a', '/b', '/c'].map((route) => ({
      id: undefined,
      method: 'GET',
      route,
      level: 1 as const,
      pendingLastRequested: 0,
    }))
    const start = Date.UTC(2026, 10, 1)
    const request = (i: number, time: number): PendingRequest => ({
      endpoint: endpoints[i % 3]!,
      time,
      durationUs: 1000 + i,
      status: 200,
      group: null,
      ip: null,
      aborted: 0,
    })
    // Two processes; the second writes requests older than the first's, hours apart.
    const first = new MetricsStore(path, { name: '1', source: 'option' }, start, undefined, 'a')
    first.write(
      Array.from({ length: 500 }, (_, i) => request(i, start + 5 * 3_600_000 + i * 1000)),
      [],
    )
    const second = new MetricsStore(path, { name: '1', source: 'option' }, start, undefined, 'b')
    second.write(
      Array.from({ length: 300 }, (_, i) => request(i, start + 2 * 3_600_000 + i * 7000)),
      [],
    )
    first.write([request(1, start + 9 * 3_600_000 + 17)], [])
    first.close()
    second.close()
    const info = () =>
      runTask({ kind: 'info', database: path }, new AbortController().signal, INLINE_STEPS)
    const scanned = () =>
      withDb(path, (db) =>
        db
          .prepare(
            'SELECT count(*) AS requests, min(time) AS firstRequest, max(time) AS lastRequest FROM request',
          )
          .get(),
      )
    expect(await info()).toMatchObject({ requests: 801, ...(scanned() as object) })
    // Rows added by other means, not counted yet: one earlier and one later than all others.
    withDb(path, (db) => {
      const add = db.prepare(
        'INSERT INTO request (endpoint_id, time, duration_us, status, version_id, aborted) VALUES (1, ?, 5, 200, 1, 0)',
      )
      add.run(start + 1000)
      add.run(start + 20 * 3_600_000)
    })
    expect(scanned()).toMatchObject({ requests: 803, firstRequest: start + 1000 })
    expect(await info()).toMatchObject(scanned() as object)
  })
})
