import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, describe, expect, it } from 'vitest'
import { createCollector, UNMATCHED_ROUTE, type HttpCollector } from 'routemeter'
import { headersSent, writableFinished } from '../../collector/src/core/collector.js'
import {
  countRequests,
  defer,
  endpointKeys,
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

function collector(options: Parameters<typeof createCollector>[0]): HttpCollector {
  const c = createCollector(options)
  defer(() => c.close())
  return c
}

/** A plain node:http handler with a hand-written router that names its routes. */
function handler(c: HttpCollector) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    c.track(req, res)
    const url = req.url ?? '/'
    let match: RegExpExecArray | null
    if ((match = /^\/users\/(\d+)$/.exec(url))) {
      c.setRoute(req, '/users/:id')
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ id: match[1] }))
    } else if (/^\/files\/.+/.test(url)) {
      c.setRoute(req, /^\/files\/.+/)
      res.end('file')
    } else if (url === '/slow') {
      c.setRoute(req, '/slow')
      await sleepAtLeast(50)
      res.end('slow')
    } else if (url === '/fail') {
      c.setRoute(req, '/fail')
      res.statusCode = 503
      res.end('unavailable')
    } else if (url === '/endless') {
      c.setRoute(req, '/endless')
      res.write('start')
      const timer = setInterval(() => res.write('.'.repeat(512)), 10)
      res.on('close', () => clearInterval(timer))
    } else {
      res.statusCode = 404
      res.end('not found')
    }
  }
}

describe('createCollector (plain http)', () => {
  it("a framework's own objects given to track() are refused, reported once, and the request is not broken", async () => {
    const errors: Error[] = []
    const c = collector({ database: tempDatabase(), onError: (error) => errors.push(error) })
    const http = await import('node:http')
    // As in a Fastify hook: request and reply are the framework's, Node's are .raw.
    const server = http.createServer((req, res) => {
      const request = { raw: req, url: req.url, headers: req.headers }
      const reply = { raw: res, code: () => reply }
      c.track(request as never, reply as never)
      c.track(request as never, reply as never)
      res.end('ok')
    })
    const { url } = await listen(server)
    for (let i = 0; i < 3; i++) expect((await request(`${url}/x`)).body).toBe('ok')
    expect(c.flush()).toBe(true)
    const reports = errors.filter((e) => /track\(req, res\) needs Node's/.test(e.message))
    expect(reports).toHaveLength(1)
    expect(reports[0]).toBeInstanceOf(TypeError)
    expect(reports[0]!.message).toMatch(
      /got an object and an object; with Fastify pass request\.raw/,
    )
    expect(c.stats().written).toBe(0)
  })

  it('past maxEndpoints, new routes are counted under (unmatched), reported once', async () => {
    const database = tempDatabase()
    const errors: Error[] = []
    const c = collector({ database, maxEndpoints: 3, onError: (error) => errors.push(error) })
    // A route "template" that carries the URL's values, as a misconfigured app would give.
    const { url } = await listen((req: IncomingMessage, res: ServerResponse) => {
      c.track(req, res)
      c.setRoute(req, req.url ?? '/')
      res.end('ok')
    })
    for (let i = 0; i < 10; i++) expect((await request(`${url}/items/${i}`)).body).toBe('ok')
    expect(c.flush()).toBe(true)

    const endpoints = endpointKeys(database)
    expect(endpoints).toEqual(
      expect.arrayContaining([
        'GET /items/0',
        'GET /items/1',
        'GET /items/2',
        `GET ${UNMATCHED_ROUTE}`,
      ]),
    )
    expect(endpoints).toHaveLength(4)
    const rows = readRequests(database)
    expect(rows).toHaveLength(10)
    expect(rows.filter((r) => r.route === UNMATCHED_ROUTE)).toHaveLength(7)
    expect(errors.filter((e) => /maxEndpoints/.test(e.message))).toHaveLength(1)
  })

  it('track + setRoute record route, status, duration, group and IP', async () => {
    const database = tempDatabase()
    const c = collector({
      database,
      version: 'http-1',
      groupBy: (req) => (req as IncomingMessage).headers['x-tenant'] as string | undefined,
    })
    const { url } = await listen(handler(c))
    expect((await request(`${url}/users/5`, { headers: { 'x-tenant': 'acme' } })).body).toBe(
      '{"id":"5"}',
    )
    await request(`${url}/users/6`)
    await request(`${url}/files/a/b.txt`)
    await request(`${url}/slow`)
    await request(`${url}/fail`)
    await request(`${url}/nope`)
    await request(`${url}/nope`, { method: 'DELETE' })
    expect(c.flush()).toBe(true)

    const rows = readRequests(database)
    expect(rows.map((r) => [r.method, r.route, r.status, r.group])).toEqual([
      ['GET', '/users/:id', 200, 'acme'],
      ['GET', '/users/:id', 200, null],
      ['GET', '/^\\/files\\/.+/', 200, null],
      ['GET', '/slow', 200, null],
      ['GET', '/fail', 503, null],
      ['GET', UNMATCHED_ROUTE, 404, null],
      ['DELETE', UNMATCHED_ROUTE, 404, null],
    ])
    expect(rows.every((r) => r.ip === '127.0.0.1' && r.version === 'http-1')).toBe(true)
    expect(rows.every((r) => r.aborted === 0 && r.duration_us > 0)).toBe(true)
    expect(rows[3]!.duration_us).toBeGreaterThanOrEqual(50_000)
    expect(c.stats()).toEqual({
      written: 7,
      pending: 0,
      dropped: 0,
      errors: 0,
      writerThread: true,
      profiling: false,
    })
    expect(c.database).toBe(database)
    expect(c.version).toEqual({ name: 'http-1', source: 'option' })
  })

  it('discover() lists routes before their first request', () => {
    const database = tempDatabase()
    const c = collector({ database, defaultLevel: 0 })
    c.discover([
      { method: 'GET', route: '/users/:id' },
      { method: 'POST', route: '/users' },
      { method: 'GET', route: /^\/files\/.+/ },
      { method: 'GET', route: ['/a', '/b'] },
      { method: 'GET', route: '/users/:id' },
    ])
    expect(endpointKeys(database)).toEqual([
      'GET /^\\/files\\/.+/',
      'GET /users/:id',
      'GET [/a,/b]',
      'POST /users',
    ])
    expect(readEndpoints(database).every((e) => e.monitor_level === 0)).toBe(true)
  })

  it('a request tracked twice is recorded once; an aborted one has aborted = 1 and its status', async () => {
    const database = tempDatabase()
    const c = collector({ database })
    const inner = handler(c)
    const { url } = await listen((req: IncomingMessage, res: ServerResponse) => {
      c.track(req, res)
      void inner(req, res)
    })
    await request(`${url}/users/1`)
    await requestAndAbort(`${url}/endless`)
    const rows = await waitFor('two rows', () => {
      c.flush()
      const rows = readRequests(database)
      return rows.length === 2 && rows
    })
    expect(rows.map((r) => [r.route, r.status, r.aborted])).toEqual([
      ['/users/:id', 200, 0],
      ['/endless', 200, 1],
    ])
  })

  it('a client that leaves before any byte was sent is recorded with status 0', async () => {
    const database = tempDatabase()
    const c = collector({ database })
    let arrived!: () => void
    const requestArrived = new Promise<void>((resolveArrived) => (arrived = resolveArrived))
    const { url } = await listen((req: IncomingMessage, res: ServerResponse) => {
      c.track(req, res)
      c.setRoute(req, '/hang')
      arrived()
      // never answers
    })
    const { request: httpRequest } = await import('node:http')
    const req = httpRequest(`${url}/hang`, { agent: false })
    req.on('error', () => undefined)
    req.end()
    await requestArrived
    req.destroy()
    const rows = await waitFor('the row of the abandoned request', () => {
      c.flush()
      const rows = readRequests(database)
      return rows.length === 1 && rows
    })
    expect(rows[0]).toMatchObject({ route: '/hang', status: 0, aborted: 1 })
  })

  it("reads a response's headersSent and writableFinished from Node's fields as its getters do", async () => {
    // The collector reads the fields (a getter misses V8's caches on Express's responses).
    const seen: Array<{ stage: string; sent: boolean; finished: boolean; getters: boolean[] }> = []
    const look = (stage: string, res: ServerResponse): void => {
      seen.push({
        stage,
        sent: headersSent(res),
        finished: writableFinished(res),
        getters: [res.headersSent, res.writableFinished],
      })
    }
    const { url } = await listen((req: IncomingMessage, res: ServerResponse) => {
      look(`${req.url} start`, res)
      res.on('close', () => look(`${req.url} close`, res))
      if (req.url === '/endless') {
        res.write('start')
        look('/endless writing', res)
        const timer = setInterval(() => res.write('.'.repeat(512)), 10)
        res.on('close', () => clearInterval(timer))
        return
      }
      res.writeHead(200)
      look('/done head', res)
      res.on('finish', () => look('/done finish', res))
      res.end('done')
    })
    await request(`${url}/done`)
    await requestAndAbort(`${url}/endless`)
    await waitFor('the aborted response to close', () =>
      seen.some((s) => s.stage === '/endless close'),
    )
    for (const s of seen) expect([s.stage, s.sent, s.finished]).toEqual([s.stage, ...s.getters])
    const at = (stage: string): [boolean, boolean] | undefined => {
      const s = seen.find((x) => x.stage === stage)
      return s && [s.sent, s.finished]
    }
    expect(at('/done start')).toEqual([false, false])
    expect(at('/done head')).toEqual([true, false])
    expect(at('/done close')).toEqual([true, true])
    expect(at('/endless close')).toEqual([true, false])
    // A response without Node's fields (another server's): the getters answer.
    const other = { headersSent: true, writableFinished: true } as unknown as ServerResponse
    expect([headersSent(other), writableFinished(other)]).toEqual([true, true])
    const partly = { finished: true, writableFinished: true } as unknown as ServerResponse
    expect(writableFinished(partly)).toBe(true)
  })

  it('close() writes what is buffered and stops collecting', async () => {
    const database = tempDatabase()
    const c = createCollector({ database, flushInterval: 60_000 })
    const { url } = await listen(handler(c))
    await request(`${url}/users/1`)
    await request(`${url}/users/2`)
    expect(c.stats().pending).toBe(2)
    c.close()
    expect(countRequests(database)).toBe(2)
    await request(`${url}/users/3`)
    expect(c.flush()).toBe(true)
    expect(c.stats()).toMatchObject({ pending: 0, written: 2 })
    expect(countRequests(database)).toBe(2)
    c.close() // twice is harmless
  })

  it('writes by itself on the flush timer', async () => {
    const database = tempDatabase()
    const c = collector({ database, flushInterval: 100 })
    const { url } = await listen(handler(c))
    await request(`${url}/users/1`)
    await waitFor('the timer to write the row', () => countRequests(database) === 1)
    expect(c.stats()).toMatchObject({ written: 1, pending: 0 })
  })
})
