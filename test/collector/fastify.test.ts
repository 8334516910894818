/**
 * Fastify 5 and 4 bound with bind(app): real instances on port 0 and real
 * HTTP. Routes of nested plugins with their prefixes, parameters, hooks'
 * time, 404s, thrown errors and error handlers, a body the parser refuses,
 * streamed and aborted replies, routes listed at onReady, the remote API
 * under its prefix, and a bind() that comes too late.
 */
import { createRequire } from 'node:module'
import { Readable } from 'node:stream'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { afterAll, describe, expect, it } from 'vitest'
import { bind, UNMATCHED_ROUTE, type RoutemeterHandle } from 'routemeter'
import {
  countRequests,
  listen,
  defer,
  endpointKeys,
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

type FastifyFactory = typeof Fastify
// Fastify 4 is installed as "fastify4": the API used here is the same in both.
const require = createRequire(import.meta.url)
const fastify4 = require('fastify4') as FastifyFactory

it('the aliases are the versions under test', () => {
  expect((require('fastify/package.json') as { version: string }).version).toMatch(/^5\./)
  expect((require('fastify4/package.json') as { version: string }).version).toMatch(/^4\./)
})

const TOKEN = 'fastify-test-token-0123456789'

function bindApp(app: FastifyInstance, options: Parameters<typeof bind>[1]): RoutemeterHandle {
  const handle = bind(app, options)
  defer(() => handle.close())
  return handle
}

/** Routes in plugins nested two deep with prefixes, hooks, errors, streams. */
function routes(app: FastifyInstance): void {
  app.register(
    async (api) => {
      // A hook of the plugin: its time is the request's.
      api.addHook('preHandler', async (request) => {
        if (request.headers['x-slow-hook'] !== undefined) await sleepAtLeast(40)
      })
      api.register(
        async (users) => {
          users.get('/', async () => ['ada', 'grace'])
          users.get('/:id', async (request) => ({ user: (request.params as { id: string }).id }))
          users.post('/:id', async (request, reply) => {
            reply.code(201)
            return { created: (request.params as { id: string }).id, body: request.body }
          })
        },
        { prefix: '/users' },
      )
      api.get('/files/*', async (request) => `file ${(request.params as { '*': string })['*']}`)
      api.get('/boom', async () => {
        throw new Error('boom')
      })
      api.get('/teapot', async () => {
        throw Object.assign(new Error('teapot'), { statusCode: 418 })
      })
      api.get('/stream', async (_request, reply) => {
        const stream = Readable.from(
          (async function* chunks() {
            for (let i = 0; i < 4; i++) {
              yield `chunk ${i}\n`
              await sleepAtLeast(25)
            }
          })(),
        )
        return reply.type('text/plain').send(stream)
      })
      api.get('/endless', (_request, reply) => {
        reply.raw.writeHead(200, { 'content-type': 'text/plain' })
        const timer = setInterval(() => reply.raw.write('x'.repeat(1024)), 10)
        reply.raw.on('close', () => clearInterval(timer))
        reply.raw.write('first')
      })
    },
    { prefix: '/api' },
  )
  app.register(async (admin) => {
    admin.setErrorHandler(async (_error, _request, reply) => {
      reply.code(422)
      return 'refused by the handler'
    })
    admin.get('/admin/refuse', async () => {
      throw new Error('no')
    })
  })
}

describe.each([
  ['Fastify 5', Fastify],
  ['Fastify 4', fastify4],
])('%s', (_name, create) => {
  it("records templates with the plugins' prefixes, statuses, hooks' time, group and IP", async () => {
    const database = tempDatabase()
    const app = create({ logger: false })
    const handle = bindApp(app, {
      database,
      version: '2026.12',
      groupBy: (request) => (request as FastifyRequest).headers['x-team'] as string | undefined,
    })
    routes(app)
    const { url } = await listen(app)

    const replies = [
      await request(`${url}/api/users`, { headers: { 'x-team': 'red' } }),
      await request(`${url}/api/users/42`),
      await request(`${url}/api/users/42`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-team': 'blue' },
        body: '{"name":"Ada"}',
      }),
      await request(`${url}/api/files/a/b.txt`),
      await request(`${url}/api/users/7`, { headers: { 'x-slow-hook': '1' } }),
    ]
    expect(replies.map((r) => r.status)).toEqual([200, 200, 201, 200, 200])
    expect(JSON.parse(replies[2]!.body)).toEqual({ created: '42', body: { name: 'Ada' } })
    expect(replies[3]!.body).toBe('file a/b.txt')

    expect(handle.flush()).toBe(true)
    const rows = readRequests(database)
    expect(rows.map((r) => `${r.method} ${r.route} ${r.status}`)).toEqual([
      'GET /api/users 200',
      'GET /api/users/:id 200',
      'POST /api/users/:id 201',
      'GET /api/files/* 200',
      'GET /api/users/:id 200',
    ])
    expect(rows.map((r) => r.group)).toEqual(['red', null, 'blue', null, null])
    for (const row of rows) {
      expect(row).toMatchObject({ version: '2026.12', ip: '127.0.0.1', aborted: 0 })
    }
    // The plugin's preHandler hook slept 40 ms: the request's time includes it.
    expect(rows[4]!.duration_us).toBeGreaterThanOrEqual(40_000)
  })

  it('404s share one "(unmatched)" endpoint per method; errors keep the status the client got', async () => {
    const database = tempDatabase()
    const app = create({ logger: false })
    const handle = bindApp(app, { database })
    routes(app)
    const { url } = await listen(app)

    for (let i = 0; i < 6; i++) {
      const reply = await request(`${url}/nope/${i}`, { method: i % 3 === 0 ? 'PUT' : 'GET' })
      expect(reply.status).toBe(404)
    }
    expect((await request(`${url}/api/users/1/nope`)).status).toBe(404)
    const statuses = [
      (await request(`${url}/api/boom`)).status,
      (await request(`${url}/api/teapot`)).status,
      (await request(`${url}/admin/refuse`)).status,
      // The body parser refuses this before the handler: still the route's request.
      (
        await request(`${url}/api/users/3`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{not json',
        })
      ).status,
    ]
    expect(statuses).toEqual([500, 418, 422, 400])
    handle.flush()
    const rows = readRequests(database)
    const unmatched = rows.filter((r) => r.route === UNMATCHED_ROUTE)
    expect(unmatched).toHaveLength(7)
    expect(unmatched.every((r) => r.status === 404)).toBe(true)
    expect(endpointKeys(database)).toEqual(
      expect.arrayContaining([`GET ${UNMATCHED_ROUTE}`, `PUT ${UNMATCHED_ROUTE}`]),
    )
    expect(
      rows
        .filter((r) => r.route !== UNMATCHED_ROUTE)
        .map((r) => `${r.method} ${r.route} ${r.status}`),
    ).toEqual([
      'GET /api/boom 500',
      'GET /api/teapot 418',
      'GET /admin/refuse 422',
      'POST /api/users/:id 400',
    ])
  })

  it('times a streamed reply to its end, and keeps an aborted one with aborted = 1', async () => {
    const database = tempDatabase()
    const app = create({ logger: false })
    const handle = bindApp(app, { database })
    routes(app)
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

  it('lists the routes registered after bind() when the instance is ready, HEAD twins left out', async () => {
    const database = tempDatabase()
    const app = create({ logger: false })
    bindApp(app, { database, defaultLevel: 2 })
    routes(app)
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
        'GET /api/files/*',
        'GET /api/stream',
        'GET /admin/refuse',
      ]),
    )
    expect(keys.some((k) => k.startsWith('HEAD '))).toBe(false)
    expect(endpoints.every((e) => e.monitor_level === 2 && e.last_requested === null)).toBe(true)
    expect(countRequests(database)).toBe(0)
  })

  it('serves the remote API under its prefix, ahead of the app, unrecorded', async () => {
    const database = tempDatabase()
    const app = create({ logger: false })
    const handle = bindApp(app, { database, remote: { token: TOKEN } })
    routes(app)
    const { url } = await listen(app)
    await request(`${url}/api/users/1`)
    const info = await request(`${url}/routemeter/info`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    expect(info.status).toBe(200)
    expect(JSON.parse(info.body)).toHaveProperty('schemaVersion')
    const refused = await request(`${url}/routemeter/info`, {
      headers: { authorization: 'Bearer not-the-token-at-all' },
    })
    expect(refused.status).toBe(401)
    handle.flush()
    expect(readRequests(database).map((r) => r.route)).toEqual(['/api/users/:id'])
  })

  it('refuses to bind an instance that is already listening, saying when to call it', async () => {
    const app = create({ logger: false })
    app.get('/', async () => 'hi')
    await listen(app)
    expect(() => bind(app, { database: tempDatabase() })).toThrow(
      /bind\(fastify\) must be called before the instance is ready or listening/,
    )
  })
})
