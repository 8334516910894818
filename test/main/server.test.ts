/**
 * Web mode end to end: a real server on port 0, real fetch and raw HTTP
 * requests, a real collector writing while the event stream listens.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import type {
  ApiError,
  ClientBreakdown,
  FileEvent,
  FileInfo,
  OverviewRow,
  RangeArgs,
} from '../../src-main/api/contract.js'
import { queryFromArgs } from '../../src-main/api/http.js'
import { DashboardService } from '../../src-main/services/dashboard.js'
import { parseServeArgs, runServe } from '../../src-main/web/cli.js'
import {
  CONTENT_SECURITY_POLICY,
  isOwnHost,
  resolveStaticPath,
  startWebServer,
  type WebServer,
  type WebService,
} from '../../src-main/web/server.js'
import { startCollectedApp, waitFor } from '../fixtures/collected-app.js'
import { buildMetricsFile, FIXTURE_NOW, tempDir } from '../fixtures/metrics-files.js'

const DAY = 86_400_000
const temp = tempDir()
const cleanups: Array<() => unknown> = []
let path: string
let other: string
let staticDir: string
let service: DashboardService
let web: WebServer

const month: RangeArgs = { from: FIXTURE_NOW - 30 * DAY, to: FIXTURE_NOW, utcOffsetMinutes: 60 }

beforeAll(async () => {
  path = buildMetricsFile(temp.dir, { requests: 5000 })
  other = buildMetricsFile(temp.dir, { name: 'other.db', requests: 1000, seed: 9 })
  staticDir = join(temp.dir, 'renderer')
  mkdirSync(join(staticDir, 'assets'), { recursive: true })
  writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>Routemeter</title>')
  writeFileSync(join(staticDir, 'assets', 'index-abc123.js'), 'console.log("routemeter")')
  writeFileSync(join(staticDir, 'assets', 'index-abc123.css'), 'body { margin: 0 }')
  writeFileSync(join(temp.dir, 'secret.txt'), 'do not serve me')
  writeFileSync(join(staticDir, '.env'), 'TOKEN=hidden')
  symlinkSync(join(temp.dir, 'secret.txt'), join(staticDir, 'assets', 'link.txt'))
  service = new DashboardService({ now: () => FIXTURE_NOW, watch: false })
  await service.openFile({ path })
  web = await startWebServer({ service, staticDir })
})
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})
afterAll(async () => {
  await web.close()
  await service.close()
  temp.cleanup()
})

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const response = await fetch(url)
  return { status: response.status, body: (await response.json()) as T }
}

async function post(
  server: WebServer,
  method: string,
  body: string,
  type = 'application/json',
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(new URL(`api/${method}`, server.url), {
    method: 'POST',
    headers: { 'content-type': type },
    body,
  })
  return { status: response.status, body: await response.json() }
}

/** A raw request: fetch would clean up `..` in the path before sending it. */
function rawGet(
  url: string,
  rawPath: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, path: rawPath, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('JSON API', () => {
  test('GET a read method returns what the service returns', async () => {
    const info = await getJson<FileInfo>(new URL('api/info', web.url).href)
    expect(info.status).toBe(200)
    expect(info.body).toEqual(await service.info({}))

    const args = { ...month, endpointIds: [1, 3] }
    const url = new URL(`api/endpoints?${queryFromArgs('endpoints', args)}`, web.url)
    expect(url.search).toContain('endpointIds=1%2C3')
    const rows = await getJson<OverviewRow[]>(url.href)
    expect(rows.status).toBe(200)
    expect(rows.body).toEqual(await service.endpoints(args))
    expect(rows.body.map((r) => r.id).sort()).toEqual([1, 3])
  })

  test('string arrays are repeated keys; an empty number list means all', async () => {
    const args = {
      ...month,
      endpointId: 1,
      kind: 'user' as const,
      names: ['acme-corp', 'globex'],
    }
    const query = `${queryFromArgs('clients', args)}`
    expect(query).toContain('names=acme-corp&names=globex')
    const result = await getJson<ClientBreakdown>(new URL(`api/clients?${query}`, web.url).href)
    expect(result.body.clients.map((c) => c.name)).toEqual(['acme-corp', 'globex'])

    const all = await getJson<unknown>(
      new URL(
        `api/utilization?from=${month.from}&to=${month.to}&utcOffsetMinutes=60&endpointIds=`,
        web.url,
      ).href,
    )
    expect(all.body).toEqual(await service.utilization(month))
  })

  test.each([
    ['api/utilization?to=10&utcOffsetMinutes=0', /"from" must be an integer/],
    ['api/utilization?from=abc&to=10&utcOffsetMinutes=0', /"from" must be .*the string "abc"/],
    ['api/utilization?from=10&to=5&utcOffsetMinutes=0', /"to" \(5\) must be later than "from"/],
    ['api/utilization?from=0&to=5&utcOffsetMinutes=2000', /"utcOffsetMinutes"/],
    ['api/utilization?from=0&to=5&utcOffsetMinutes=0&endpointIds=1,x', /"endpointIds"/],
    ['api/clients?from=0&to=5&utcOffsetMinutes=0&endpointId=1&kind=robot', /"kind" must be/],
    ['api/latestErrors?from=0&to=5&utcOffsetMinutes=0&limit=0', /"limit"/],
  ])('400 with a clear message for %s', async (url, message) => {
    const result = await getJson<{ error: ApiError }>(new URL(url, web.url).href)
    expect(result.status).toBe(400)
    expect(result.body.error.code).toBe('BAD_ARGUMENT')
    expect(result.body.error.message).toMatch(message)
  })

  test('unknown methods and wrong verbs', async () => {
    const unknown = await getJson<{ error: ApiError }>(new URL('api/dropTables', web.url).href)
    expect(unknown.status).toBe(404)
    expect(unknown.body.error.message).toMatch(/unknown API method "dropTables"/)
    const getWrite = await fetch(new URL('api/setLevel?endpointId=1&level=0', web.url))
    expect(getWrite.status).toBe(405)
    expect(getWrite.headers.get('allow')).toBe('POST')
    const postRead = await post(web, 'info', '{}')
    expect(postRead.status).toBe(405)
    expect((await fetch(new URL('api/', web.url))).status).toBe(404)
  })

  test('POST setLevel with a JSON body writes the level', async () => {
    const result = await post(web, 'setLevel', JSON.stringify({ endpointId: 2, level: 3 }))
    expect(result).toMatchObject({ status: 200, body: { id: 2, level: 3 } })
    const rows = await service.endpoints(month)
    expect(rows.find((r) => r.id === 2)?.level).toBe(3)
    await post(web, 'setLevel', JSON.stringify({ endpointId: 2, level: 1 }))
  })

  test('POST refuses other content types, bad JSON, bad arguments', async () => {
    const form = await post(
      web,
      'setLevel',
      'endpointId=2&level=3',
      'application/x-www-form-urlencoded',
    )
    expect(form.status).toBe(415)
    const broken = await post(web, 'setLevel', '{"endpointId": 2,')
    expect(broken).toMatchObject({ status: 400, body: { error: { code: 'BAD_ARGUMENT' } } })
    const level = await post(web, 'setLevel', JSON.stringify({ endpointId: 2, level: 7 }))
    expect(level).toMatchObject({
      status: 400,
      body: { error: { code: 'BAD_ARGUMENT', message: expect.stringMatching(/"level"/) } },
    })
    const missing = await post(web, 'setLevel', JSON.stringify({ endpointId: 9999, level: 1 }))
    expect(missing.status).toBe(400)
  })

  test('openFile is refused unless the server allows it', async () => {
    const refused = await post(web, 'openFile', JSON.stringify({ path: other }))
    expect(refused).toMatchObject({
      status: 403,
      body: { error: { code: 'READ_ONLY', message: expect.stringMatching(/--allow-open/) } },
    })

    const own = new DashboardService({ watch: false })
    await own.openFile({ path })
    const open = await startWebServer({ service: own, allowOpen: true })
    cleanups.push(
      () => own.close(),
      () => open.close(),
    )
    const opened = await post(open, 'openFile', JSON.stringify({ path: other }))
    expect(opened).toMatchObject({ status: 200, body: { path: other } })
    const bad = await post(open, 'openFile', JSON.stringify({ path: join(temp.dir, 'secret.txt') }))
    expect(bad).toMatchObject({ status: 422, body: { error: { code: 'NOT_SQLITE' } } })
  })

  test('errors of the service keep their code: no file open is 409', async () => {
    const empty = new DashboardService({ watch: false })
    const server = await startWebServer({ service: empty })
    cleanups.push(
      () => empty.close(),
      () => server.close(),
    )
    const result = await getJson<{ error: ApiError }>(new URL('api/info', server.url).href)
    expect(result).toMatchObject({ status: 409, body: { error: { code: 'NO_FILE' } } })
  })
})

describe('server-sent events', () => {
  /** Reads an event stream and keeps its text; `close()` disconnects. */
  async function listen(server: WebServer): Promise<{ text: () => string; close: () => void }> {
    const abort = new AbortController()
    const response = await fetch(new URL('api/events', server.url), { signal: abort.signal })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    let text = ''
    const decoder = new TextDecoder()
    const reader = response.body!.getReader()
    void (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) return
          text += decoder.decode(value, { stream: true })
        }
      } catch {
        // aborted
      }
    })()
    return { text: () => text, close: () => abort.abort() }
  }

  function events(text: string): FileEvent[] {
    return text
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice(6)) as FileEvent)
  }

  test('a collector commit arrives as "changed"; heartbeats keep the stream alive', async () => {
    const live = join(temp.dir, 'live.db')
    const app = await startCollectedApp(live)
    cleanups.push(() => app.close())
    const watched = new DashboardService()
    await watched.openFile({ path: live })
    const server = await startWebServer({ service: watched, heartbeatMs: 50 })
    cleanups.push(
      () => watched.close(),
      () => server.close(),
    )

    const stream = await listen(server)
    cleanups.push(() => stream.close())
    await waitFor('the first heartbeat', () => stream.text().includes(': heartbeat'))
    await app.get('/api/items')
    app.collector.flush()
    await waitFor(
      'a changed event',
      () => events(stream.text()).some((e) => e.kind === 'changed'),
      2500,
    )
  })

  test('a disconnected client is unsubscribed', async () => {
    let subscribed = 0
    const counting: WebService = Object.assign(Object.create(service) as DashboardService, {
      onFileEvent(listener: (event: FileEvent) => void) {
        subscribed++
        const unsubscribe = service.onFileEvent(listener)
        return () => {
          subscribed--
          unsubscribe()
        }
      },
    })
    const server = await startWebServer({ service: counting })
    cleanups.push(() => server.close())
    const stream = await listen(server)
    await waitFor('the subscription', () => subscribed === 1)
    stream.close()
    await waitFor('the unsubscription', () => subscribed === 0)
  })

  test('closing the server ends open streams', async () => {
    const server = await startWebServer({ service })
    const stream = await listen(server)
    await waitFor('the stream to open', () => stream.text().includes('connected'))
    await server.close()
    stream.close()
  })
})

describe('static renderer build', () => {
  test('index.html for /, content types, the CSP on every answer', async () => {
    const index = await fetch(web.url)
    expect(index.status).toBe(200)
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(index.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY)
    expect(CONTENT_SECURITY_POLICY).toMatch(/script-src 'self'(;|$)/)
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-eval/)
    expect(index.headers.get('x-content-type-options')).toBe('nosniff')
    expect(await index.text()).toContain('<title>Routemeter</title>')

    const script = await fetch(new URL('assets/index-abc123.js', web.url))
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    const style = await fetch(new URL('assets/index-abc123.css', web.url))
    expect(style.headers.get('content-type')).toBe('text/css; charset=utf-8')
    const api = await fetch(new URL('api/info', web.url))
    expect(api.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY)
  })

  test('hashed assets are kept by the browser, the rest revalidated (304); text is compressed', async () => {
    const source = 'export const chart = "' + 'routemeter '.repeat(2000) + '"\n'
    writeFileSync(join(staticDir, 'assets', 'chart-Ab12Cd34.js'), source)
    const get = (path: string, headers: Record<string, string>) =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>(
        (resolveGet, reject) => {
          const { hostname, port } = new URL(web.url)
          const req = httpRequest({ hostname, port, path, headers }, (res) => {
            const chunks: Buffer[] = []
            res.on('data', (chunk: Buffer) => chunks.push(chunk))
            res.on('end', () =>
              resolveGet({
                status: res.statusCode ?? 0,
                headers: res.headers,
                body: Buffer.concat(chunks),
              }),
            )
          })
          req.on('error', reject)
          req.end()
        },
      )
    const br = await get('/assets/chart-Ab12Cd34.js', { 'accept-encoding': 'gzip, deflate, br' })
    expect(br.status).toBe(200)
    expect(br.headers['content-encoding']).toBe('br')
    expect(br.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    expect(br.headers.vary).toContain('Accept-Encoding')
    expect(Number(br.headers['content-length'])).toBe(br.body.length)
    expect(br.body.length).toBeLessThan(source.length / 10)
    expect(brotliDecompressSync(br.body).toString()).toBe(source)
    const gzip = await get('/assets/chart-Ab12Cd34.js', { 'accept-encoding': 'gzip' })
    expect(gzip.headers['content-encoding']).toBe('gzip')
    expect(gunzipSync(gzip.body).toString()).toBe(source)
    const plain = await get('/assets/chart-Ab12Cd34.js', {})
    expect(plain.headers['content-encoding']).toBeUndefined()
    expect(plain.body.toString()).toBe(source)

    // index.html is revalidated: its ETag or date answers 304 without a body.
    const index = await get('/', { 'accept-encoding': 'gzip' })
    expect(index.headers['cache-control']).toBe('no-cache')
    const etag = String(index.headers.etag)
    expect(etag).toMatch(/^W\/"/)
    const again = await get('/', { 'if-none-match': etag })
    expect(again.status).toBe(304)
    expect(again.body.length).toBe(0)
    const since = await get('/', { 'if-modified-since': String(index.headers['last-modified']) })
    expect(since.status).toBe(304)
    // Fonts and images are sent as they are.
    expect((await get('/assets/index-abc123.css', {})).headers['content-encoding']).toBeUndefined()
  })

  test('missing assets are 404; a page path gets index.html', async () => {
    expect((await fetch(new URL('assets/missing.js', web.url))).status).toBe(404)
    const page = await fetch(new URL('endpoints/3', web.url))
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('<title>Routemeter</title>')
    expect((await fetch(web.url, { method: 'DELETE' })).status).toBe(405)
  })

  test.each([
    '/../secret.txt',
    '/assets/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/..%2fsecret.txt',
    '/assets/%2e%2e%2f%2e%2e%2fsecret.txt',
    '/..%5csecret.txt',
    '/.env',
    '/assets/link.txt',
    '/%00index.html',
  ])('refuses %s', async (rawPath) => {
    const result = await rawGet(web.url, rawPath)
    expect([400, 403, 404]).toContain(result.status)
    expect(result.body).not.toContain('do not serve me')
    expect(result.body).not.toContain('TOKEN')
  })

  test('resolveStaticPath keeps paths inside the root', () => {
    expect(resolveStaticPath('/srv/app', '/')).toBe('/srv/app/index.html')
    expect(resolveStaticPath('/srv/app', '/assets/a.js')).toBe('/srv/app/assets/a.js')
    expect(resolveStaticPath('/srv/app', '/a/../../etc/passwd')).toBeNull()
    expect(resolveStaticPath('/srv/app', '/%E0%A4%A')).toBeNull()
  })

  test('a request for another host name is refused (DNS rebinding)', async () => {
    const port = new URL(web.url).port
    for (const host of [
      'evil.example:80',
      `127.attacker.example:${port}`,
      `127.0.0.1.evil.example:${port}`,
      `[::1].evil.com:${port}`,
      `127.0.0.1@evil.com:${port}`,
      `localhost.evil.com:${port}`,
      `localhost:${Number(port) + 1}`,
      '127.0.0.1',
    ]) {
      const refused = await rawGet(web.url, '/api/info', { Host: host })
      expect({ host, status: refused.status }).toEqual({ host, status: 421 })
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `LOCALHOST:${port}`]) {
      const local = await rawGet(web.url, '/api/info', { Host: host })
      expect({ host, status: local.status }).toEqual({ host, status: 200 })
    }
  })

  test('isOwnHost accepts the bound address, loopback names and --host, with the port', () => {
    const loopback = { host: '127.0.0.1', address: '127.0.0.1', port: 8080 }
    expect(isOwnHost('127.0.0.1:8080', loopback)).toBe(true)
    expect(isOwnHost('localhost:8080', loopback)).toBe(true)
    expect(isOwnHost('[::1]:8080', loopback)).toBe(true)
    expect(isOwnHost('127.0.0.2:8080', loopback)).toBe(false)
    expect(isOwnHost('127.evil.test:8080', loopback)).toBe(false)
    expect(isOwnHost('localhost:8081', loopback)).toBe(false)
    const v6 = { host: '::1', address: '::1', port: 80 }
    expect(isOwnHost('[::1]', v6)).toBe(true)
    expect(isOwnHost('[::1]:80', v6)).toBe(true)
    expect(isOwnHost('[::1].evil.com', v6)).toBe(false)
    const everywhere = { host: '0.0.0.0', address: '0.0.0.0', port: 9000 }
    expect(isOwnHost('192.168.1.20:9000', everywhere)).toBe(true)
    expect(isOwnHost('[fe80::1]:9000', everywhere)).toBe(true)
    expect(isOwnHost('dashboard.internal:9000', everywhere)).toBe(false)
    const named = { host: 'metrics.internal', address: '10.0.0.5', port: 9000 }
    expect(isOwnHost('metrics.internal:9000', named)).toBe(true)
    expect(isOwnHost('10.0.0.5:9000', named)).toBe(true)
    expect(isOwnHost('localhost:9000', named)).toBe(false)
  })
})

describe('command line', () => {
  test('arguments', () => {
    expect(
      parseServeArgs(['m.db', '--port', '8080', '--host', '0.0.0.0'], '/out/renderer'),
    ).toEqual({
      file: join(process.cwd(), 'm.db'),
      host: '0.0.0.0',
      port: 8080,
      staticDir: '/out/renderer',
      allowOpen: false,
    })
    expect(parseServeArgs(['--port=0', '--allow-open', '--static', '/x'], '/d')).toMatchObject({
      file: undefined,
      port: 0,
      staticDir: '/x',
      allowOpen: true,
    })
    expect(() => parseServeArgs(['--port', 'eighty'], '/d')).toThrow(/--port must be/)
    expect(() => parseServeArgs(['a.db', 'b.db'], '/d')).toThrow(/one metrics file/)
    expect(() => parseServeArgs(['--verbose'], '/d')).toThrow(/verbose/)
  })

  test('runs on a file and prints the URL in one line', async () => {
    const lines: string[] = []
    const running = await runServe(
      { file: path, host: '127.0.0.1', port: 0, staticDir, allowOpen: false },
      (line) => lines.push(line),
    )
    cleanups.push(() => running.stop())
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain(running.url)
    expect(lines[0]).toMatch(/^Routemeter is showing .* at http:\/\/127\.0\.0\.1:\d+\/$/)
    expect((await getJson<FileInfo>(new URL('api/info', running.url).href)).body.path).toBe(path)
  })

  test('on a bad file, keeps serving and says why, in the terminal and to the page', async () => {
    const lines: string[] = []
    const running = await runServe(
      {
        file: join(temp.dir, 'secret.txt'),
        host: '127.0.0.1',
        port: 0,
        staticDir,
        allowOpen: false,
      },
      (line) => lines.push(line),
    )
    cleanups.push(() => running.stop())
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^Routemeter cannot show .*secret\.txt: .*is a text file/)
    expect(lines[0]).toContain(running.url)
    const info = await getJson<{ error: ApiError }>(new URL('api/info', running.url).href)
    expect(info.status).toBe(422)
    expect(info.body.error.code).toBe('NOT_SQLITE')
    expect(info.body.error.message).toMatch(/is a text file/)
  })
})
