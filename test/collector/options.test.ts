import express from 'express'
import Koa from 'koa'
import { existsSync } from 'node:fs'
import { hostname } from 'node:os'
import { afterAll, describe, expect, it } from 'vitest'
import {
  bind,
  createCollector,
  express as routemeterExpress,
  koa as routemeterKoa,
} from 'routemeter'
import {
  defer,
  errorSink,
  listen,
  readRequests,
  removeTempDirs,
  request,
  tempDatabase,
  withDb,
} from './helpers.js'

afterAll(removeTempDirs)

describe('option validation', () => {
  const bad: Array<[string, unknown]> = [
    ['database', 42],
    ['database', ''],
    ['version', 1],
    ['version', ''],
    ['git', {}],
    ['groupBy', 'user'],
    ['getIp', true],
    ['defaultLevel', 4],
    ['defaultLevel', '1'],
    ['defaultLevel', -1],
    ['ignore', '/health'],
    ['ignore', ['health']],
    ['ignore', [42]],
    ['onError', 'console'],
    ['flushInterval', 0],
    ['flushInterval', 1.5],
    ['flushInterval', '250'],
    ['maxBufferedRows', -1],
    ['maxBufferedRows', Infinity],
    ['maxEndpoints', 0],
    ['maxNewClients', 1.5],
    ['levelPollInterval', NaN],
    ['flushOnExit', 'yes'],
    ['node', ''],
    ['node', 7],
  ]

  it.each(bad)('option %s = %o throws a TypeError naming it', (name, value) => {
    const database = tempDatabase()
    const make = [
      () => bind(new Koa(), { database, [name]: value }),
      () => bind(express(), { database, [name]: value }),
      () => createCollector({ database, [name]: value }),
      () => routemeterKoa({ database, [name]: value }),
      () => routemeterExpress({ database, [name]: value }),
    ]
    for (const attempt of make) {
      expect(attempt).toThrow(TypeError)
      expect(attempt).toThrow(`option "${name}"`)
    }
    // Nothing was opened or created for a rejected configuration.
    expect(existsSync(database)).toBe(false)
  })

  it('rejects an unknown option by name', () => {
    const database = tempDatabase()
    expect(() => bind(new Koa(), { database, databse: 'x' } as never)).toThrow(TypeError)
    expect(() => bind(new Koa(), { database, databse: 'x' } as never)).toThrow(
      'unknown option "databse"',
    )
    expect(() => createCollector({ database, flushIntervalMs: 5 } as never)).toThrow(
      'unknown option "flushIntervalMs"',
    )
  })

  it("infers groupBy's parameter: Express's req, Koa's ctx (checked by the type check); a string is no app", () => {
    const fromExpress = bind(express(), {
      database: tempDatabase(),
      groupBy: (req) => req.get('x-user'),
      getIp: (req) => req.ip ?? null,
    })
    const fromKoa = bind(new Koa(), {
      database: tempDatabase(),
      groupBy: (ctx) => ctx.get('x-user') || undefined,
    })
    fromExpress.close()
    fromKoa.close()
    // @ts-expect-error: bind takes an application, which a string is not
    expect(() => bind('app', { database: tempDatabase() })).toThrow(/got the string "app"/)
  })

  it('rejects options that are not an object, and an app of no supported framework', () => {
    expect(() => bind(new Koa(), 'metrics.db' as never)).toThrow(TypeError)
    expect(() => bind(new Koa(), null as never)).toThrow(TypeError)
    expect(() => bind(new Koa(), [] as never)).toThrow(TypeError)
    expect(() => bind({}, { database: tempDatabase() })).toThrow(
      /expects a Koa, Express, Fastify, NestJS or Hono application, got an object.*createCollector\(\)/,
    )
    expect(() => bind(new Koa(), { flushInterval: 1.5 })).toThrow(
      /"flushInterval" must be a positive integer, got number 1\.5/,
    )
    expect(() => bind(() => undefined, { database: tempDatabase() })).toThrow(TypeError)
  })
})

describe('ignore', () => {
  function app(options: Parameters<typeof bind>[1]) {
    const app = express()
    const handle = bind(app, options)
    defer(() => handle.close())
    for (const path of ['/health', '/health/live', '/healthz', '/static/app.js', '/api/users']) {
      app.get(path, (_req, res) => {
        res.send(path)
      })
    }
    return { app, handle }
  }

  it('keeps exact paths, path prefixes and RegExp matches out of the file', async () => {
    const database = tempDatabase()
    const { app: server, handle } = app({ database, ignore: ['/health', '/static/', /\.js$/] })
    const { url } = await listen(server)
    const paths = [
      '/health',
      '/health?x=1',
      '/health/live',
      '/healthz',
      '/static/app.js',
      '/api/users',
    ]
    const bodies = []
    for (const path of paths) bodies.push((await request(url + path)).body)
    // Ignored requests are answered as usual.
    expect(bodies).toEqual([
      '/health',
      '/health',
      '/health/live',
      '/healthz',
      '/static/app.js',
      '/api/users',
    ])
    handle.flush()
    expect(readRequests(database).map((r) => r.route)).toEqual(['/healthz', '/api/users'])
  })

  it('keeps requests matching a predicate out of the file', async () => {
    const database = tempDatabase()
    const { app: server, handle } = app({
      database,
      ignore: (req) => req.headers['user-agent'] === 'probe',
    })
    const { url } = await listen(server)
    await request(`${url}/api/users`, { headers: { 'user-agent': 'probe' } })
    await request(`${url}/api/users`, { headers: { 'user-agent': 'browser' } })
    await request(`${url}/healthz`, { headers: { 'user-agent': 'probe' } })
    handle.flush()
    expect(readRequests(database).map((r) => r.route)).toEqual(['/api/users'])
  })

  it('a throwing ignore predicate neither breaks the response nor loses the request', async () => {
    const database = tempDatabase()
    const sink = errorSink()
    const { app: server, handle } = app({
      database,
      onError: sink.onError,
      ignore: (req) => {
        if (req.url === '/healthz') throw new Error('ignore failed')
        return false
      },
    })
    const { url } = await listen(server)
    expect(await request(`${url}/healthz`)).toMatchObject({ status: 200, body: '/healthz' })
    expect(await request(`${url}/api/users`)).toMatchObject({ status: 200, body: '/api/users' })
    handle.flush()
    expect(readRequests(database).map((r) => r.route)).toEqual(['/healthz', '/api/users'])
    expect(sink.errors.map((e) => e.message)).toEqual(['ignore failed'])
  })
})

describe('getIp and onError', () => {
  it('getIp decides the recorded IP; a throwing getIp records none and reports', async () => {
    const database = tempDatabase()
    const sink = errorSink()
    const app = new Koa()
    const handle = bind(app, {
      database,
      onError: sink.onError,
      getIp: (ctx) => {
        const header = (ctx as Koa.Context).get('x-real-ip')
        if (header === 'bad') throw new Error('getIp failed')
        return header || null
      },
    })
    defer(() => handle.close())
    app.use((ctx) => {
      ctx.body = 'ok'
    })
    const { url } = await listen(app)
    await request(url, { headers: { 'x-real-ip': '198.51.100.7' } })
    await request(url)
    expect(await request(url, { headers: { 'x-real-ip': 'bad' } })).toMatchObject({ body: 'ok' })
    handle.flush()
    expect(readRequests(database).map((r) => r.ip)).toEqual(['198.51.100.7', null, null])
    expect(sink.errors.map((e) => e.message)).toEqual(['getIp failed'])
  })

  it('an onError that throws does not take the app down', async () => {
    const database = tempDatabase()
    const app = express()
    const handle = bind(app, {
      database,
      onError: () => {
        throw new Error('onError failed')
      },
      groupBy: () => {
        throw new Error('groupBy failed')
      },
    })
    defer(() => handle.close())
    app.get('/', (_req, res) => {
      res.send('fine')
    })
    const { url } = await listen(app)
    for (let i = 0; i < 3; i++) expect((await request(url)).body).toBe('fine')
    expect(handle.flush()).toBe(true)
    expect(readRequests(database)).toHaveLength(3)
    expect(handle.stats()).toMatchObject({ written: 3, errors: 3, dropped: 0, pending: 0 })
  })
})

describe('node', () => {
  /** Every request's node name, in insertion order, and the node table. */
  function nodesOf(database: string): { requests: Array<string | null>; nodes: string[] } {
    return withDb(database, (db) => ({
      requests: db
        .prepare('SELECT n.name FROM request r LEFT JOIN node n ON n.id = r.node_id ORDER BY r.id')
        .pluck()
        .all() as Array<string | null>,
      nodes: db.prepare('SELECT name FROM node ORDER BY id').pluck().all() as string[],
    }))
  }

  it('is the host name by default, written once and with every request', async () => {
    const database = tempDatabase()
    const app = express()
    const handle = bind(app, { database })
    defer(() => handle.close())
    app.get('/', (_req, res) => {
      res.send('ok')
    })
    const { url } = await listen(app)
    for (let i = 0; i < 3; i++) await request(url)
    expect(handle.flush()).toBe(true)
    expect(handle.node).toBe(hostname())
    expect(nodesOf(database)).toEqual({ requests: Array(3).fill(hostname()), nodes: [hostname()] })
  })

  it('the option names it; two nodes writing one file are told apart', async () => {
    const database = tempDatabase()
    const handles = ['web-1', 'web-2'].map((node) => {
      const app = new Koa()
      const handle = bind(app, { database, node })
      defer(() => handle.close())
      app.use((ctx) => {
        ctx.body = node
      })
      return { app, handle }
    })
    const [one, two] = await Promise.all(handles.map(({ app }) => listen(app)))
    await request(one!.url)
    await request(two!.url)
    await request(two!.url)
    for (const { handle } of handles) expect(handle.flush()).toBe(true)
    expect(handles.map(({ handle }) => handle.node)).toEqual(['web-1', 'web-2'])
    const { requests, nodes } = nodesOf(database)
    expect(nodes.sort()).toEqual(['web-1', 'web-2'])
    expect(requests.sort()).toEqual(['web-1', 'web-2', 'web-2'])
  })
})
