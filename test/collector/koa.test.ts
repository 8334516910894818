import Router from '@koa/router'
import Koa from 'koa'
import { createRequire } from 'node:module'
import { Readable } from 'node:stream'
import { performance } from 'node:perf_hooks'
import { afterAll, describe, expect, it } from 'vitest'
import { bind, koa as routemeterKoa, UNMATCHED_ROUTE, type RoutemeterHandle } from 'routemeter'
import {
  countRequests,
  defer,
  endpointKeys,
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

// Koa 2 is installed as "koa2", without types of its own: the API used here is Koa 3's.
const require = createRequire(import.meta.url)
const Koa2 = require('koa2') as typeof Koa

it('the aliases are the versions under test', () => {
  expect((require('koa/package.json') as { version: string }).version).toMatch(/^3\./)
  expect((require('koa2/package.json') as { version: string }).version).toMatch(/^2\./)
})

function bindKoa(app: Koa, options: Parameters<typeof bind>[1]): RoutemeterHandle {
  const handle = bind(app, options)
  defer(() => handle.close())
  return handle
}

/** An app with nested routers and prefixes: /api/users/:id/posts/:postId and friends. */
function koaApp(): Koa {
  const app = new Koa()
  const posts = new Router({ prefix: '/posts' })
  posts.get('/:postId', (ctx) => {
    ctx.body = { post: ctx.params.postId }
  })
  const users = new Router()
  users.get('/', (ctx) => {
    ctx.body = ['ada', 'grace']
  })
  users.get('/:id', (ctx) => {
    ctx.body = { user: ctx.params.id }
  })
  users.post('/:id', (ctx) => {
    ctx.status = 201
    ctx.body = { created: ctx.params.id }
  })
  users.use('/:id', posts.routes())
  const api = new Router({ prefix: '/api' })
  api.use('/users', users.routes())
  api.get('/slow', async (ctx) => {
    await sleepAtLeast(50)
    ctx.body = 'slow'
  })
  api.get('/teapot', (ctx) => {
    ctx.throw(418, 'short and stout')
  })
  api.get('/custom', () => {
    throw Object.assign(new Error('gone'), { status: 410, expose: true })
  })
  api.get('/boom', () => {
    throw new Error('boom')
  })
  api.get('/stream', (ctx) => {
    ctx.type = 'text/plain'
    ctx.body = Readable.from(
      (async function* () {
        for (let i = 0; i < 4; i++) {
          yield `chunk ${i}\n`
          await sleepAtLeast(25)
        }
      })(),
    )
  })
  api.get('/endless', (ctx) => {
    ctx.type = 'text/plain'
    ctx.body = Readable.from(
      (async function* () {
        for (;;) {
          yield 'x'.repeat(1024)
          await sleepAtLeast(10)
        }
      })(),
    )
  })
  app.use(api.routes())
  app.use(api.allowedMethods())
  return app
}

describe('Koa 3 with @koa/router', () => {
  it('records method, route template, status, duration, version, group and IP', async () => {
    const database = tempDatabase()
    const app = koaApp()
    const handle = bindKoa(app, {
      database,
      version: 'v1.2.3',
      groupBy: (ctx: Koa.Context) => ctx.get('x-team') || undefined,
    })
    const { url } = await listen(app)

    const replies = [
      await request(`${url}/api/users`, { headers: { 'x-team': 'red' } }),
      await request(`${url}/api/users/42`, { headers: { 'x-team': 'blue' } }),
      await request(`${url}/api/users/43`),
      await request(`${url}/api/users/42`, { method: 'POST' }),
      await request(`${url}/api/users/7/posts/99`),
    ]
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 201, 200])
    expect(JSON.parse(replies[4]!.body)).toEqual({ post: '99' })
    const before = performance.now()
    const slow = await request(`${url}/api/slow`)
    const clientUs = (performance.now() - before) * 1000
    expect(slow.body).toBe('slow')

    expect(handle.flush()).toBe(true)
    const rows = readRequests(database)
    expect(rows.map((r) => `${r.method} ${r.route} ${r.status}`)).toEqual([
      'GET /api/users 200',
      'GET /api/users/:id 200',
      'GET /api/users/:id 200',
      'POST /api/users/:id 201',
      'GET /api/users/:id/posts/:postId 200',
      'GET /api/slow 200',
    ])
    expect(rows.map((r) => r.group)).toEqual(['red', 'blue', null, null, null, null])
    for (const row of rows) {
      expect(row.version).toBe('v1.2.3')
      expect(row.version_source).toBe('option')
      expect(row.ip).toBe('127.0.0.1')
      expect(row.aborted).toBe(0)
      expect(row.duration_us).toBeGreaterThan(0)
      expect(Math.abs(row.time - Date.now())).toBeLessThan(60_000)
    }
    const slowRow = rows[5]!
    expect(slowRow.duration_us).toBeGreaterThanOrEqual(50_000)
    // The server's measure lies within the client's round trip (plus slack for the close event).
    expect(slowRow.duration_us).toBeLessThan(clientUs + 1_000_000)
    expect(handle.version).toEqual({ name: 'v1.2.3', source: 'option' })
  })

  it('404s share one "(unmatched)" endpoint per method', async () => {
    const database = tempDatabase()
    const app = koaApp()
    const handle = bindKoa(app, { database })
    const { url } = await listen(app)
    await request(`${url}/api/users`)
    handle.flush()
    const endpointsBefore = readEndpoints(database).length

    for (let i = 0; i < 30; i++) {
      const random = Math.random().toString(36).slice(2)
      const reply = await request(`${url}/${random}/${i}?q=${random}`, {
        method: i % 3 === 0 ? 'POST' : 'GET',
      })
      expect(reply.status).toBe(404)
    }
    handle.flush()
    const endpoints = endpointKeys(database)
    expect(endpoints.length).toBe(endpointsBefore + 2)
    expect(endpoints).toContain(`GET ${UNMATCHED_ROUTE}`)
    expect(endpoints).toContain(`POST ${UNMATCHED_ROUTE}`)
    const unmatched = readRequests(database).filter((r) => r.route === UNMATCHED_ROUTE)
    expect(unmatched).toHaveLength(30)
    expect(unmatched.every((r) => r.status === 404)).toBe(true)
    expect(unmatched.filter((r) => r.method === 'POST')).toHaveLength(10)
  })

  it('records the status the client got for thrown errors', async () => {
    const database = tempDatabase()
    const app = koaApp()
    app.silent = true
    const handle = bindKoa(app, { database })
    const { url } = await listen(app)

    const teapot = await request(`${url}/api/teapot`)
    const custom = await request(`${url}/api/custom`)
    const boom = await request(`${url}/api/boom`)
    expect([teapot.status, custom.status, boom.status]).toEqual([418, 410, 500])
    expect(teapot.body).toBe('short and stout')

    handle.flush()
    expect(readRequests(database).map((r) => `${r.route} ${r.status}`)).toEqual([
      '/api/teapot 418',
      '/api/custom 410',
      '/api/boom 500',
    ])
  })

  it('a router.use() middleware that answers before the route keeps the route as endpoint', async () => {
    const database = tempDatabase()
    const app = new Koa()
    app.silent = true
    const handle = bindKoa(app, { database })
    const admin = new Router({ prefix: '/admin' })
    admin.use(async (ctx, next) => {
      if (!ctx.get('x-token')) ctx.throw(401)
      await next()
    })
    admin.get('/stats/:id', (ctx) => {
      ctx.body = 'stats'
    })
    const things = new Router()
    things.use('/things/:tid', async (ctx, next) => {
      if (ctx.get('x-deny')) ctx.throw(403)
      await next()
    })
    things.get('/things/:tid/parts', (ctx) => {
      ctx.body = 'parts'
    })
    things.get(/^\/re\/(\d+)$/, (ctx) => {
      ctx.body = 're'
    })
    app.use(admin.routes()).use(things.routes())
    const { url } = await listen(app)

    const statuses = [
      (await request(`${url}/admin/stats/1`)).status,
      (await request(`${url}/admin/stats/1`, { headers: { 'x-token': 't' } })).status,
      (await request(`${url}/things/5/parts`, { headers: { 'x-deny': '1' } })).status,
      (await request(`${url}/things/5/parts`)).status,
      (await request(`${url}/re/5`)).status,
    ]
    expect(statuses).toEqual([401, 200, 403, 200, 200])
    handle.flush()
    expect(readRequests(database).map((r) => `${r.method} ${r.route} ${r.status}`)).toEqual([
      'GET /admin/stats/:id 401',
      'GET /admin/stats/:id 200',
      'GET /things/:tid/parts 403',
      'GET /things/:tid/parts 200',
      'GET /^\\/re\\/(\\d+)$/ 200',
    ])
    expect(endpointKeys(database)).toEqual([
      'GET /^\\/re\\/(\\d+)$/',
      'GET /admin/stats/:id',
      'GET /things/:tid/parts',
    ])
  })

  it('times a streamed response to its end, and keeps an aborted one with aborted = 1', async () => {
    const database = tempDatabase()
    const app = koaApp()
    app.silent = true
    const handle = bindKoa(app, { database })
    const { url } = await listen(app)

    const streamed = await request(`${url}/api/stream`)
    expect(streamed.body).toBe('chunk 0\nchunk 1\nchunk 2\nchunk 3\n')
    const aborted = await requestAndAbort(`${url}/api/endless`)
    expect(aborted.status).toBe(200)

    const rows = await waitFor('the aborted request to be written', () => {
      handle.flush()
      const rows = readRequests(database)
      return rows.length === 2 && rows
    })
    const [stream, endless] = rows
    expect(stream).toMatchObject({ route: '/api/stream', status: 200, aborted: 0 })
    // Four chunks, each followed by a wait of at least 25 ms.
    expect(stream!.duration_us).toBeGreaterThanOrEqual(100_000)
    expect(endless).toMatchObject({ route: '/api/endless', status: 200, aborted: 1 })
  })

  it('groupBy can read a value set by a session-like middleware; a throwing groupBy breaks nothing', async () => {
    const database = tempDatabase()
    const app = new Koa()
    const sink = errorSink()
    const handle = bindKoa(app, {
      database,
      onError: sink.onError,
      groupBy: (subject) => {
        const ctx = subject as Koa.Context
        if (ctx.path === '/throws') throw new Error('groupBy failed')
        return (ctx.state as { user?: { team: string } }).user?.team
      },
    })
    app.use(async (ctx, next) => {
      const token = ctx.get('authorization')
      if (token) ctx.state.user = { team: token.replace('Bearer ', 'team-') }
      await next()
    })
    const router = new Router()
    router.get('/me', (ctx) => {
      ctx.body = 'me'
    })
    router.get('/throws', (ctx) => {
      ctx.body = 'still fine'
    })
    app.use(router.routes())
    const { url } = await listen(app)

    await request(`${url}/me`, { headers: { authorization: 'Bearer a' } })
    await request(`${url}/me`)
    const reply = await request(`${url}/throws`)
    expect(reply).toMatchObject({ status: 200, body: 'still fine' })

    handle.flush()
    expect(readRequests(database).map((r) => [r.route, r.status, r.group])).toEqual([
      ['/me', 200, 'team-a'],
      ['/me', 200, null],
      ['/throws', 200, null],
    ])
    expect(sink.errors.map((e) => e.message)).toEqual(['groupBy failed'])
  })

  it('uses ctx.ip (X-Forwarded-For) when app.proxy is set, the socket address otherwise', async () => {
    for (const proxy of [true, false]) {
      const database = tempDatabase()
      const app = new Koa({ proxy })
      const handle = bindKoa(app, { database })
      app.use((ctx) => {
        ctx.body = ctx.ip
      })
      const { url } = await listen(app)
      const reply = await request(url, { headers: { 'x-forwarded-for': '203.0.113.9' } })
      handle.flush()
      const expected = proxy ? '203.0.113.9' : '127.0.0.1'
      expect(reply.body).toBe(expected)
      expect(readRequests(database)[0]!.ip).toBe(expected)
    }
  })

  it('lists registered routes in the endpoint table before any request', async () => {
    const database = tempDatabase()
    const app = koaApp()
    bindKoa(app, { database, defaultLevel: 2 })
    await listen(app)

    const endpoints = await waitFor('discovered endpoints', () => {
      const rows = readEndpoints(database)
      return rows.length > 0 && rows
    })
    expect(endpoints.map((e) => `${e.method} ${e.route}`).sort()).toEqual(
      [
        'GET /api/users',
        'GET /api/users/:id',
        'POST /api/users/:id',
        'GET /api/users/:id/posts/:postId',
        'GET /api/slow',
        'GET /api/teapot',
        'GET /api/custom',
        'GET /api/boom',
        'GET /api/stream',
        'GET /api/endless',
      ].sort(),
    )
    expect(endpoints.every((e) => e.monitor_level === 2 && e.last_requested === null)).toBe(true)
    expect(countRequests(database)).toBe(0)
  })

  it('discovers routes of an app served by http.createServer(app.callback()), after setImmediate', async () => {
    const database = tempDatabase()
    const app = koaApp()
    bindKoa(app, { database })
    await listen(app.callback())
    const keys = await waitFor('discovered endpoints', () => {
      const keys = endpointKeys(database)
      return keys.length > 0 && keys
    })
    expect(keys).toContain('GET /api/users/:id/posts/:postId')
  })
})

describe('the explicit koa() middleware', () => {
  it('times requests from where it is registered and discovers routes on the first request', async () => {
    const database = tempDatabase()
    const app = koaApp()
    const metrics = routemeterKoa({ database, version: 'mw' })
    defer(() => metrics.close())
    // koaApp() has registered its routers already: the middleware goes in front of them.
    app.middleware.unshift(metrics as unknown as Koa.Middleware)
    const { url } = await listen(app)
    expect((await request(`${url}/api/users/1/posts/2`)).status).toBe(200)
    expect((await request(`${url}/nowhere`)).status).toBe(404)
    metrics.flush()
    expect(readRequests(database).map((r) => `${r.route} ${r.status} ${r.version}`)).toEqual([
      '/api/users/:id/posts/:postId 200 mw',
      `${UNMATCHED_ROUTE} 404 mw`,
    ])
    expect(endpointKeys(database)).toContain('GET /api/slow')
  })
})

describe('Koa 2', () => {
  it('records nested @koa/router templates, 404s, errors and discovered routes', async () => {
    const database = tempDatabase()
    const app = new Koa2()
    app.silent = true
    const handle = bind(app, { database, version: 'koa2' })
    defer(() => handle.close())
    const comments = new Router()
    comments.get('/:commentId', (ctx) => {
      ctx.body = `comment ${ctx.params.commentId}`
    })
    const articles = new Router({ prefix: '/articles' })
    articles.get('/:slug', (ctx) => {
      ctx.body = `article ${ctx.params.slug}`
    })
    articles.delete('/:slug', (ctx) => {
      ctx.throw(403)
    })
    articles.use('/:slug/comments', comments.routes())
    const v1 = new Router({ prefix: '/v1' })
    v1.use(articles.routes())
    app.use(v1.routes())
    const { url } = await listen(app)

    const discovered = await waitFor('discovered endpoints', () => {
      const keys = endpointKeys(database)
      return keys.length > 0 && keys
    })
    expect(discovered).toEqual([
      'DELETE /v1/articles/:slug',
      'GET /v1/articles/:slug',
      'GET /v1/articles/:slug/comments/:commentId',
    ])

    expect((await request(`${url}/v1/articles/hello`)).body).toBe('article hello')
    expect((await request(`${url}/v1/articles/hello/comments/3`)).body).toBe('comment 3')
    expect((await request(`${url}/v1/articles/hello`, { method: 'DELETE' })).status).toBe(403)
    expect((await request(`${url}/v1/nothing-here`)).status).toBe(404)
    handle.flush()
    expect(
      readRequests(database).map((r) => `${r.method} ${r.route} ${r.status} ${r.version}`),
    ).toEqual([
      'GET /v1/articles/:slug 200 koa2',
      'GET /v1/articles/:slug/comments/:commentId 200 koa2',
      'DELETE /v1/articles/:slug 403 koa2',
      `GET ${UNMATCHED_ROUTE} 404 koa2`,
    ])
  })
})

describe('koa-router 7', () => {
  // koa-router 7 sets ctx._matchedRoute to the last route matching the path before any runs.
  const OldRouter = require('koa-router7') as typeof Router

  it('files a request under the route that answered it, not a later one that also matches', async () => {
    expect((require('koa-router7/package.json') as { version: string }).version).toBe('7.4.0')
    const database = tempDatabase()
    const app = new Koa2()
    app.silent = true
    const handle = bind(app, { database, version: 'koa-router7' })
    defer(() => handle.close())
    const articles = new OldRouter()
    articles.get('/articles/feed', (ctx) => {
      ctx.body = 'feed'
    })
    articles.get('/articles/:slug', (ctx) => {
      ctx.body = `article ${ctx.params.slug}`
    })
    const api = new OldRouter({ prefix: '/api' })
    api.use(articles.routes())
    app.use(api.routes())
    const { url } = await listen(app)

    expect((await request(`${url}/api/articles/feed`)).body).toBe('feed')
    expect((await request(`${url}/api/articles/hello`)).body).toBe('article hello')
    expect((await request(`${url}/api/articles/feed`)).body).toBe('feed')
    handle.flush()
    expect(readRequests(database).map((r) => `${r.method} ${r.route} ${r.status}`)).toEqual([
      'GET /api/articles/feed 200',
      'GET /api/articles/:slug 200',
      'GET /api/articles/feed 200',
    ])
  })
})
