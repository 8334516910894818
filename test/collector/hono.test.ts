/**
 * Hono 4 on @hono/node-server bound with bind(app): a real server on port 0
 * and real HTTP. Templates of sub-apps mounted with app.route() and
 * basePath(), parameters, a middleware that answers before the route, 404s,
 * thrown errors and HTTPException, streamed and aborted replies, routes
 * listed before any request, the remote API, a request that does not come
 * through Node (fetch called directly).
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { stream } from 'hono/streaming'
import { afterAll, describe, expect, it } from 'vitest'
import { bind, UNMATCHED_ROUTE, type RoutemeterOptions } from 'routemeter'
import {
  defer,
  errorSink,
  listen,
  readEndpoints,
  readRequests,
  removeTempDirs,
  request,
  requestAndAbort,
  sleepAtLeast,
  tempDatabase,
  waitFor,
} from './helpers.js'

afterAll(removeTempDirs)

const TOKEN = 'hono-test-token-0123456789'

/** The app: bound first, then a sub-app of users under /api, errors, streams. */
function honoApp(options: RoutemeterOptions) {
  const app = new Hono()
  const handle = bind(app, options)
  defer(() => handle.close())
  const users = new Hono()
  users.get('/', (c) => c.json(['ada', 'grace']))
  users.get('/:id', (c) => c.json({ user: c.req.param('id') }))
  users.post('/:id', (c) => c.json({ created: c.req.param('id') }, 201))
  const api = new Hono().basePath('/api')
  // An auth check in front of /api/private/*: it answers 401 before the route runs.
  api.use('/private/*', async (c, next) => {
    if (c.req.header('authorization') === undefined) return c.text('who are you?', 401)
    await next()
  })
  api.get('/private/report/:year', (c) => c.text(`report ${c.req.param('year')}`))
  api.route('/users', users)
  api.get('/boom', () => {
    throw new Error('boom')
  })
  api.get('/teapot', () => {
    throw new HTTPException(418, { message: 'short and stout' })
  })
  api.get('/stream', (c) =>
    stream(c, async (s) => {
      for (let i = 0; i < 4; i++) {
        await s.write(`chunk ${i}\n`)
        await sleepAtLeast(25)
      }
    }),
  )
  api.get('/endless', (c) =>
    stream(c, async (s) => {
      while (!s.aborted) {
        await s.write('x'.repeat(1024))
        await sleepAtLeast(10)
      }
    }),
  )
  app.route('/', api)
  app.onError((error, c) =>
    error instanceof HTTPException ? error.getResponse() : c.text('error', 500),
  )
  return { app, handle }
}

describe('Hono on @hono/node-server', () => {
  it("records the templates of mounted sub-apps, a middleware's answer on its route, 404s and errors", async () => {
    const database = tempDatabase()
    const { app, handle } = honoApp({
      database,
      version: 'hono-1',
      groupBy: (c) =>
        (c as { req: { header(name: string): string | undefined } }).req.header('x-team'),
    })
    const { url } = await listen(app)

    const statuses = [
      (await request(`${url}/api/users`, { headers: { 'x-team': 'red' } })).status,
      (await request(`${url}/api/users/42`)).status,
      (await request(`${url}/api/users/42`, { method: 'POST' })).status,
      (await request(`${url}/api/private/report/2026`)).status,
      (await request(`${url}/api/private/report/2026`, { headers: { authorization: 'x' } })).status,
      (await request(`${url}/api/boom`)).status,
      (await request(`${url}/api/teapot`)).status,
      (await request(`${url}/nope/1`)).status,
      (await request(`${url}/api/users/1/nope`, { method: 'PUT' })).status,
    ]
    expect(statuses).toEqual([200, 200, 201, 401, 200, 500, 418, 404, 404])
    handle.flush()
    const rows = readRequests(database)
    expect(rows.map((r) => `${r.method} ${r.route} ${r.status}`)).toEqual([
      'GET /api/users 200',
      'GET /api/users/:id 200',
      'POST /api/users/:id 201',
      'GET /api/private/report/:year 401',
      'GET /api/private/report/:year 200',
      'GET /api/boom 500',
      'GET /api/teapot 418',
      `GET ${UNMATCHED_ROUTE} 404`,
      `PUT ${UNMATCHED_ROUTE} 404`,
    ])
    expect(rows[0]).toMatchObject({ group: 'red', version: 'hono-1', ip: '127.0.0.1' })
  })

  it('times a streamed reply to its end, and keeps an aborted one with aborted = 1', async () => {
    const database = tempDatabase()
    const { app, handle } = honoApp({ database })
    const { url } = await listen(app)
    expect((await request(`${url}/api/stream`)).body).toBe('chunk 0\nchunk 1\nchunk 2\nchunk 3\n')
    expect((await requestAndAbort(`${url}/api/endless`)).status).toBe(200)
    const rows = await waitFor('the aborted request to be written', () => {
      handle.flush()
      const rows = readRequests(database)
      return rows.length === 2 && rows
    })
    expect(rows[0]).toMatchObject({ route: '/api/stream', status: 200, aborted: 0 })
    expect(rows[0]!.duration_us).toBeGreaterThanOrEqual(100_000)
    expect(rows[1]).toMatchObject({ route: '/api/endless', status: 200, aborted: 1 })
  })

  it('lists the routes before any request, and serves the remote API unrecorded', async () => {
    const database = tempDatabase()
    const { app, handle } = honoApp({ database, remote: { token: TOKEN } })
    const { url } = await listen(app)
    const keys = await waitFor('discovered endpoints', () => {
      const rows = readEndpoints(database)
      return rows.length > 0 && rows.map((e) => `${e.method} ${e.route}`)
    })
    expect(keys).toEqual(
      expect.arrayContaining([
        'GET /api/users',
        'GET /api/users/:id',
        'POST /api/users/:id',
        'GET /api/private/report/:year',
        'GET /api/stream',
      ]),
    )
    expect(keys.some((k) => k.includes('*'))).toBe(false)
    const info = await request(`${url}/routemeter/info`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    expect(info.status).toBe(200)
    expect(JSON.parse(info.body)).toHaveProperty('schemaVersion')
    handle.flush()
    expect(readRequests(database)).toEqual([])
  })

  it('a request that does not come through Node is served as ever and reported once', async () => {
    const sink = errorSink()
    const { app, handle } = honoApp({ database: tempDatabase(), onError: sink.onError })
    for (let i = 0; i < 3; i++) {
      const response = await app.fetch(new Request('http://local/api/users/1'))
      expect(await response.json()).toEqual({ user: '1' })
    }
    expect(sink.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/bind\(hono\) records the requests @hono\/node-server serves/),
    ])
    handle.flush()
    expect(handle.stats().written).toBe(0)
  })

  it('refuses to bind an app that already has routes, naming the first', () => {
    const app = new Hono()
    app.get('/early', (c) => c.text('early'))
    expect(() => bind(app, { database: tempDatabase() })).toThrow(
      /bind\(hono\) must come right after new Hono\(\).*GET \/early first/,
    )
  })
})
