import express from 'express'
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { afterAll, describe, expect, it } from 'vitest'
import {
  bind,
  express as routemeterExpress,
  UNMATCHED_ROUTE,
  type RoutemeterHandle,
} from 'routemeter'
import {
  countRequests,
  defer,
  endpointKeys,
  errorSink,
  listen,
  readEndpoints,
  readRequests,
  removeTempDirs,
  ROOT,
  buildPackage,
  request,
  requestAndAbort,
  sleepAtLeast,
  tempDatabase,
  waitFor,
} from './helpers.js'

afterAll(removeTempDirs)

type ExpressFactory = typeof express
// Express 4 is installed as "express4", without types of its own: the API used here is 5's.
const require = createRequire(import.meta.url)
const express4 = require('express4') as ExpressFactory

it('the aliases are the versions under test', () => {
  expect((require('express/package.json') as { version: string }).version).toMatch(/^5\./)
  expect((require('express4/package.json') as { version: string }).version).toMatch(/^4\./)
})

function bindApp(app: object, options: Parameters<typeof bind>[1]): RoutemeterHandle {
  const handle = bind(app, options)
  defer(() => handle.close())
  return handle
}

type Req = express.Request
type Res = express.Response

/**
 * Nested routers with parameterised mount paths, RegExp and array paths,
 * and a mounted sub-app, on Express 5 or 4 (same API for these features).
 */
function expressApp(create: ExpressFactory) {
  const app = create()
  const posts = create.Router({ mergeParams: true })
  posts.get('/:postId', (req: Req, res: Res) => {
    res.json({ user: req.params.id, post: req.params.postId })
  })
  const users = create.Router()
  users.get('/', (_req: Req, res: Res) => {
    res.json(['ada', 'grace'])
  })
  users.get('/:id', (req: Req, res: Res) => {
    res.json({ user: req.params.id })
  })
  users.post('/:id', (req: Req, res: Res) => {
    res.status(201).json({ created: req.params.id })
  })
  users.use('/:id/posts', posts)
  const api = create.Router()
  api.use('/users', users)
  api.get('/slow', async (_req: Req, res: Res) => {
    await sleepAtLeast(50)
    res.send('slow')
  })
  api.get(/^\/files\/(\d+)$/, (req: Req, res: Res) => {
    res.send(`file ${String(req.params[0])}`)
  })
  api.get(['/alpha', '/beta'], (req: Req, res: Res) => {
    res.send(`either ${req.path}`)
  })
  api.get('/boom', () => {
    throw new Error('boom')
  })
  api.get('/teapot', () => {
    throw Object.assign(new Error('teapot'), { status: 418 })
  })
  api.get('/async-boom', async () => {
    throw Object.assign(new Error('unavailable'), { statusCode: 503 })
  })
  api.get('/stream', async (_req: Req, res: Res) => {
    res.type('text/plain')
    for (let i = 0; i < 4; i++) {
      res.write(`chunk ${i}\n`)
      await sleepAtLeast(25)
    }
    res.end()
  })
  api.get('/endless', (_req: Req, res: Res) => {
    res.type('text/plain')
    const timer = setInterval(() => res.write('x'.repeat(1024)), 10)
    res.on('close', () => clearInterval(timer))
    res.write('first')
  })
  app.use('/api', api)

  const admin = create()
  admin.get('/health', (_req: Req, res: Res) => {
    res.send('ok')
  })
  admin.get('/jobs/:jobId', (req: Req, res: Res) => {
    res.send(`job ${req.params.jobId}`)
  })
  app.use('/admin', admin)
  const tenant = create()
  tenant.get('/dashboard/:panel', (req: Req, res: Res) => {
    res.send(`panel ${req.params.panel}`)
  })
  app.use('/tenants/:tenant', tenant)
  // Quiet error handler that keeps Express's status choice (err.status, else 500).
  app.use(
    (
      err: { status?: number; statusCode?: number },
      _req: Req,
      res: Res,
      _next: (e: unknown) => void, // four parameters: Express's mark of an error handler
    ) => {
      res.status(err.status ?? err.statusCode ?? 500).send('error')
    },
  )
  return app
}

describe.each([
  ['Express 5', express],
  ['Express 4', express4],
])('%s', (_name, create) => {
  it('records nested, RegExp, array and sub-app routes with status, duration, version, group, IP', async () => {
    const database = tempDatabase()
    const app = expressApp(create)
    const handle = bindApp(app, {
      database,
      version: '2024.1',
      // Typed for Express's own request, without a cast (checked by the type check).
      groupBy: (req: Req) => req.get('x-team'),
    })
    const { url } = await listen(app)

    const replies = [
      await request(`${url}/api/users`, { headers: { 'x-team': 'red' } }),
      await request(`${url}/api/users/42`),
      await request(`${url}/api/users/42`, { method: 'POST', headers: { 'x-team': 'blue' } }),
      await request(`${url}/api/users/7/posts/99`),
      await request(`${url}/api/files/12`),
      await request(`${url}/api/alpha`),
      await request(`${url}/api/beta`),
      await request(`${url}/admin/health`),
      await request(`${url}/admin/jobs/5`),
      await request(`${url}/tenants/acme/dashboard/7`),
      await request(`${url}/tenants/globex/dashboard/8`),
    ]
    expect(replies.map((r) => r.status)).toEqual([
      200, 200, 201, 200, 200, 200, 200, 200, 200, 200, 200,
    ])
    expect(JSON.parse(replies[3]!.body)).toEqual({ user: '7', post: '99' })
    expect(replies[4]!.body).toBe('file 12')
    expect(replies[8]!.body).toBe('job 5')
    const before = performance.now()
    expect((await request(`${url}/api/slow`)).body).toBe('slow')
    const clientUs = (performance.now() - before) * 1000

    expect(handle.flush()).toBe(true)
    const rows = readRequests(database)
    expect(rows.map((r) => `${r.method} ${r.route} ${r.status}`)).toEqual([
      'GET /api/users 200',
      'GET /api/users/:id 200',
      'POST /api/users/:id 201',
      'GET /api/users/:id/posts/:postId 200',
      'GET /api/^\\/files\\/(\\d+)$/ 200',
      'GET /api/[/alpha,/beta] 200',
      'GET /api/[/alpha,/beta] 200',
      'GET /admin/health 200',
      'GET /admin/jobs/:jobId 200',
      'GET /tenants/:tenant/dashboard/:panel 200',
      'GET /tenants/:tenant/dashboard/:panel 200',
      'GET /api/slow 200',
    ])
    expect(rows.map((r) => r.group)).toEqual(['red', null, 'blue', ...Array(9).fill(null)])
    for (const row of rows) {
      expect(row).toMatchObject({ version: '2024.1', version_source: 'option', ip: '127.0.0.1' })
      expect(row.aborted).toBe(0)
      expect(row.duration_us).toBeGreaterThan(0)
    }
    const slow = rows.at(-1)!
    expect(slow.duration_us).toBeGreaterThanOrEqual(50_000)
    expect(slow.duration_us).toBeLessThan(clientUs + 1_000_000)
  })

  it('404s share one "(unmatched)" endpoint per method', async () => {
    const database = tempDatabase()
    const app = expressApp(create)
    const handle = bindApp(app, { database })
    const { url } = await listen(app)
    await waitFor('discovery', () => readEndpoints(database).length > 0)
    const endpointsBefore = readEndpoints(database).length

    for (let i = 0; i < 30; i++) {
      const random = Math.random().toString(36).slice(2)
      const reply = await request(`${url}/${random}/${i}`, {
        method: i % 3 === 0 ? 'PUT' : 'GET',
      })
      expect(reply.status).toBe(404)
    }
    // a 404 under a mounted router and a mounted sub-app
    expect((await request(`${url}/api/users/1/nope/2`)).status).toBe(404)
    expect((await request(`${url}/admin/nope`)).status).toBe(404)
    handle.flush()
    const endpoints = endpointKeys(database)
    expect(endpoints.length).toBe(endpointsBefore + 2)
    expect(endpoints).toEqual(
      expect.arrayContaining([`GET ${UNMATCHED_ROUTE}`, `PUT ${UNMATCHED_ROUTE}`]),
    )
    const unmatched = readRequests(database).filter((r) => r.route === UNMATCHED_ROUTE)
    expect(unmatched).toHaveLength(32)
    expect(unmatched.every((r) => r.status === 404)).toBe(true)
  })

  it('records the status the client got for thrown errors', async () => {
    const database = tempDatabase()
    const app = create()
    const handle = bindApp(app, { database })
    app.get('/boom', () => {
      throw new Error('boom')
    })
    app.get('/teapot', () => {
      throw Object.assign(new Error('teapot'), { status: 418 })
    })
    app.get('/next-error', (_req: Req, _res: Res, next: (e: unknown) => void) => {
      next(Object.assign(new Error('unavailable'), { statusCode: 503 }))
    })
    // Express's own final handler answers, without an error handler of ours ("test": no logging).
    app.set('env', 'test')
    const { url } = await listen(app)

    const statuses = [
      (await request(`${url}/boom`)).status,
      (await request(`${url}/teapot`)).status,
      (await request(`${url}/next-error`)).status,
    ]
    expect(statuses).toEqual([500, 418, 503])
    handle.flush()
    expect(readRequests(database).map((r) => `${r.route} ${r.status}`)).toEqual([
      '/boom 500',
      '/teapot 418',
      '/next-error 503',
    ])
  })

  it('times a streamed response to its end, and keeps an aborted one with aborted = 1', async () => {
    const database = tempDatabase()
    const app = expressApp(create)
    const handle = bindApp(app, { database })
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

  it('lists registered routes in the endpoint table before any request', async () => {
    const database = tempDatabase()
    const app = expressApp(create)
    bindApp(app, { database, defaultLevel: 3 })
    await listen(app)
    const endpoints = await waitFor('discovered endpoints', () => {
      const rows = readEndpoints(database)
      return rows.length > 0 && rows
    })
    const keys = endpoints.map((e) => `${e.method} ${e.route}`)
    expect(keys).toEqual(
      expect.arrayContaining([
        'GET /api/users',
        'GET /api/users/:id',
        'POST /api/users/:id',
        'GET /api/users/:id/posts/:postId',
        'GET /api/^\\/files\\/(\\d+)$/',
        'GET /api/[/alpha,/beta]',
        'GET /api/slow',
        'GET /api/stream',
      ]),
    )
    expect(endpoints.every((e) => e.monitor_level === 3 && e.last_requested === null)).toBe(true)
    expect(countRequests(database)).toBe(0)
  })
})

describe('Express 5 specifics', () => {
  it('groupBy can read a value set by a session-like middleware; a throwing groupBy breaks nothing', async () => {
    const database = tempDatabase()
    const app = express()
    const sink = errorSink()
    const handle = bindApp(app, {
      database,
      onError: sink.onError,
      groupBy: (subject) => {
        const req = subject as Req & { session?: { user?: string } }
        if (req.path === '/throws') throw new Error('groupBy failed')
        return req.session?.user
      },
    })
    app.use((req, _res, next) => {
      const cookie = req.get('cookie') ?? ''
      const user = /user=(\w+)/.exec(cookie)?.[1]
      ;(req as Req & { session?: { user?: string } }).session = user ? { user } : {}
      next()
    })
    app.get('/me', (_req, res) => {
      res.send('me')
    })
    app.get('/throws', (_req, res) => {
      res.send('still fine')
    })
    const { url } = await listen(app)

    await request(`${url}/me`, { headers: { cookie: 'user=alice' } })
    await request(`${url}/me`)
    expect(await request(`${url}/throws`)).toMatchObject({ status: 200, body: 'still fine' })
    handle.flush()
    expect(readRequests(database).map((r) => [r.route, r.status, r.group])).toEqual([
      ['/me', 200, 'alice'],
      ['/me', 200, null],
      ['/throws', 200, null],
    ])
    expect(sink.errors.map((e) => e.message)).toEqual(['groupBy failed'])
  })

  it('discovers routes after setImmediate when served by http.createServer(app)', async () => {
    const database = tempDatabase()
    const app = expressApp(express)
    bindApp(app, { database })
    const { createServer } = await import('node:http')
    await listen(createServer(app as unknown as Parameters<typeof createServer>[1]))
    const keys = await waitFor('discovered endpoints', () => {
      const keys = endpointKeys(database)
      return keys.length > 0 && keys
    })
    expect(keys).toContain('GET /api/users/:id/posts/:postId')
    expect(countRequests(database)).toBe(0)
  })

  it('a rejected async handler: the status Express 5 sends is the status recorded', async () => {
    const database = tempDatabase()
    const app = expressApp(express)
    const handle = bindApp(app, { database })
    const { url } = await listen(app)
    expect((await request(`${url}/api/async-boom`)).status).toBe(503)
    expect((await request(`${url}/api/boom`)).status).toBe(500)
    expect((await request(`${url}/api/teapot`)).status).toBe(418)
    handle.flush()
    expect(readRequests(database).map((r) => `${r.route} ${r.status}`)).toEqual([
      '/api/async-boom 503',
      '/api/boom 500',
      '/api/teapot 418',
    ])
  })

  it('routes added after listen() are recorded with their template', async () => {
    const database = tempDatabase()
    const app = express()
    const handle = bindApp(app, { database })
    const router = express.Router()
    app.use('/late/:tenant', router)
    const { url } = await listen(app)
    router.get('/items/:itemId', (_req, res) => {
      res.send('late')
    })
    expect((await request(`${url}/late/acme/items/3`)).body).toBe('late')
    handle.flush()
    expect(readRequests(database).map((r) => r.route)).toEqual(['/late/:tenant/items/:itemId'])
  })

  it('uses the proxy-aware IP when the app trusts proxies', async () => {
    const database = tempDatabase()
    const app = express()
    app.set('trust proxy', true)
    const handle = bindApp(app, { database })
    app.get('/ip', (req, res) => {
      res.send(req.ip)
    })
    const { url } = await listen(app)
    expect(
      (await request(`${url}/ip`, { headers: { 'x-forwarded-for': '203.0.113.9' } })).body,
    ).toBe('203.0.113.9')
    handle.flush()
    expect(readRequests(database)[0]!.ip).toBe('203.0.113.9')
  })
})

describe('Express 4 specifics', () => {
  it('a router mounted at a parameter with its own pattern, a RegExp or an array is one endpoint per route', async () => {
    const database = tempDatabase()
    const app = express4()
    const tenant = express4.Router()
    tenant.get('/orders/:orderId', (req: Req, res: Res) => {
      res.send(`order ${String(req.params.orderId)}`)
    })
    app.use('/t/:tenant(\\d+)', tenant)
    const byRegExp = express4.Router()
    byRegExp.get('/info', (_req: Req, res: Res) => {
      res.send('info')
    })
    app.use(/^\/shard-\d+/, byRegExp)
    const byArray = express4.Router()
    byArray.get('/ping', (_req: Req, res: Res) => {
      res.send('pong')
    })
    app.use(['/eu/:region', '/us/:region'], byArray)
    const handle = bindApp(app, { database })
    const { url } = await listen(app)
    for (let i = 0; i < 30; i++) {
      expect((await request(`${url}/t/${1000 + i}/orders/${i}`)).body).toBe(`order ${i}`)
      expect((await request(`${url}/shard-${i}/info`)).body).toBe('info')
      expect((await request(`${url}/${i % 2 ? 'eu' : 'us'}/r${i}/ping`)).body).toBe('pong')
    }
    handle.flush()
    const routes = new Set(readRequests(database).map((r) => `${r.method} ${r.route}`))
    expect([...routes].sort()).toEqual(
      [
        'GET /t/:tenant/orders/:orderId',
        'GET /^\\/shard-\\d+/info',
        'GET [/eu/:region,/us/:region]/ping',
      ].sort(),
    )
    expect(countRequests(database)).toBe(90)
  })

  it('binding before the first route, with routes added after an await, does not crash the app', () => {
    buildPackage()
    const database = tempDatabase()
    // A child process: an exception thrown out of band would end it, and show in its exit code.
    const out = execFileSync(
      process.execPath,
      [
        '-e',
        `(async () => {
          const express = require('express4')
          const { bind } = require('routemeter')
          const errors = []
          const app = express()
          const handle = bind(app, { database: ${JSON.stringify(database)}, onError: (e) => errors.push(e.message) })
          await new Promise((resolve) => setTimeout(resolve, 50)) // config, a database connection...
          app.get('/late/:id', (req, res) => res.send('late ' + req.params.id))
          const server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)) })
          const body = await (await fetch('http://127.0.0.1:' + server.address().port + '/late/7')).text()
          handle.flush()
          server.close()
          handle.close()
          console.log(JSON.stringify({ body, errors }))
        })()`,
      ],
      { cwd: ROOT, encoding: 'utf8' },
    )
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({ body: 'late 7', errors: [] })
    expect(readRequests(database).map((r) => r.route)).toEqual(['/late/:id'])
  })
})

describe('the explicit express() middleware', () => {
  it('records templates of routers and of a sub-app mounted at a parameterised path', async () => {
    const database = tempDatabase()
    const app = express()
    const metrics = routemeterExpress({ database, version: 'mw' })
    defer(() => metrics.close())
    app.use(metrics)
    const router = express.Router()
    router.get('/:id', (req, res) => {
      res.send(`item ${req.params.id}`)
    })
    app.use('/items', router)
    const shop = express()
    shop.get('/orders/:orderId', (req, res) => {
      res.send(`order ${req.params.orderId}`)
    })
    app.use('/shops/:shop', shop)
    const { url } = await listen(app)

    expect((await request(`${url}/items/1`)).body).toBe('item 1')
    expect((await request(`${url}/shops/a/orders/1`)).body).toBe('order 1')
    expect((await request(`${url}/shops/b/orders/2`)).body).toBe('order 2')
    expect((await request(`${url}/items`)).status).toBe(404)
    metrics.flush()
    expect(
      readRequests(database).map((r) => `${r.method} ${r.route} ${r.status} ${r.version}`),
    ).toEqual([
      'GET /items/:id 200 mw',
      'GET /shops/:shop/orders/:orderId 200 mw',
      'GET /shops/:shop/orders/:orderId 200 mw',
      `GET ${UNMATCHED_ROUTE} 404 mw`,
    ])
    // Discovered on the first request: the app's routes, then the sub-app's.
    expect(endpointKeys(database)).toEqual([
      `GET ${UNMATCHED_ROUTE}`,
      'GET /items/:id',
      'GET /shops/:shop/orders/:orderId',
    ])
  })
})
