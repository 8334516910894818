/**
 * Pulling from real servers: a Koa app and an Express app, each in its own
 * process with the collector's remote option on, pulled through the app's
 * own sources service. Failures come from small real HTTP servers that
 * misbehave on purpose (a socket closed mid-download, a stalled download,
 * a server that is not Routemeter's).
 */
import Database from 'better-sqlite3'
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DashboardService } from '../../src-main/services/dashboard.js'
import { RemoteClient } from '../../src-main/services/sources/remote.js'
import { SourcesService } from '../../src-main/services/sources/service.js'
import { tempDir, type TempDir } from '../fixtures/metrics-files.js'
import { waitFor } from '../fixtures/wait.js'

const TOKEN = 'test-token-0123456789abcdef'
const APP = join(import.meta.dirname, '..', 'fixtures', 'remote-app.ts')
const RANGE = { from: Date.UTC(2020, 0, 1), to: Date.UTC(2100, 0, 1), utcOffsetMinutes: 0 }

interface RemoteApp {
  url: string
  database: string
  child: ChildProcess
  get(path: string): Promise<void>
  close(): Promise<void>
}

async function startRemoteApp(
  dir: string,
  framework: 'koa' | 'express',
  node: string,
): Promise<RemoteApp> {
  const database = join(dir, `${node}.db`)
  const child = fork(APP, [database, framework, node, TOKEN], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`the ${framework} app exited with ${code}`)))
    child.on('message', (message: { type: string; port: number }) => {
      if (message.type === 'listening') resolve(message.port)
    })
  })
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    database,
    child,
    async get(path) {
      await (await fetch(url + path)).arrayBuffer()
    },
    async close() {
      if (child.exitCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.send({ type: 'close' })
      await exited
    },
  }
}

/** Every request row of a file, in id order, with names instead of ids. */
function requestRows(path: string): unknown[] {
  const db = new Database(path, { readonly: true })
  const rows = db
    .prepare(
      `SELECT r.id, e.method, e.route, r.time, r.duration_us, r.status, v.name AS version,
              n.name AS node, r.aborted
       FROM request r JOIN endpoint e ON e.id = r.endpoint_id JOIN version v ON v.id = r.version_id
       LEFT JOIN node n ON n.id = r.node_id ORDER BY r.id`,
    )
    .all()
  db.close()
  return rows
}

function levelIn(path: string, method: string, route: string): number {
  const db = new Database(path, { readonly: true })
  const level = db
    .prepare('SELECT monitor_level FROM endpoint WHERE method = ? AND route = ?')
    .pluck()
    .get(method, route) as number
  db.close()
  return level
}

/** Files in the data folder, temporary ones included. */
function dataFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

let temp: TempDir
/** processes to kill whatever happens to a test */
const spare: ChildProcess[] = []
let koa: RemoteApp
let express: RemoteApp

beforeAll(async () => {
  temp = tempDir()
  ;[koa, express] = await Promise.all([
    startRemoteApp(temp.dir, 'koa', 'node-koa'),
    startRemoteApp(temp.dir, 'express', 'node-express'),
  ])
  for (let i = 0; i < 40; i++) await koa.get(`/api/items/${i % 7}`)
  await koa.get('/api/items')
  for (let i = 0; i < 25; i++) await express.get('/api/items')
  const wait = (app: RemoteApp, n: number) =>
    waitFor(`${n} requests written`, async () => {
      const info = await new RemoteClient(app.url, TOKEN).info()
      return info.requests === n
    })
  await Promise.all([wait(koa, 41), wait(express, 25)])
})

afterAll(async () => {
  await Promise.all([koa?.close(), express?.close()])
  for (const child of spare) if (child.exitCode === null) child.kill()
  temp?.cleanup()
})

function newServices(name: string): {
  files: DashboardService
  sources: SourcesService
  dataDir: string
} {
  const files = new DashboardService({ watch: false })
  const dataDir = join(temp.dir, name)
  return { files, sources: new SourcesService({ files, dataDir, watch: false }), dataDir }
}

describe.each([
  ['koa', () => koa],
  ['express', () => express],
] as const)('a %s server', (_name, app) => {
  it('refuses no token and a wrong token, sends no data and writes no file', async () => {
    const bare = await fetch(`${app().url}/routemeter/snapshot`)
    expect(bare.status).toBe(401)
    const body = await bare.text()
    expect(body).not.toContain('SQLite')
    expect(body.length).toBeLessThan(300)

    const { files, sources, dataDir } = newServices(`wrong-${_name}`)
    const refusal = sources.addServer({ url: app().url, token: 'not-the-token-0000000' })
    await expect(refusal).rejects.toMatchObject({ code: 'WRONG_TOKEN' })
    await expect(refusal).rejects.toThrow(/wrong token/)
    // A right token added, then a wrong one given for a pull: the error says so, no file.
    const client = new RemoteClient(app().url, 'not-the-token-0000000')
    await expect(client.download(join(dataDir, 'x.db'))).rejects.toMatchObject({
      code: 'WRONG_TOKEN',
    })
    expect(dataFiles(dataDir)).toEqual([])
    await sources.close()
    await files.close()
  })

  it('pulls a copy with the same rows as the server, refreshes with only what is new, and changes a level on the server', async () => {
    const { files, sources, dataDir } = newServices(`pull-${_name}`)
    const server = await sources.addServer({ url: app().url, token: TOKEN })
    expect(server.node).toBe(`node-${_name}`)
    const seen: number[] = []
    const polling = setInterval(() => {
      void sources.state({}).then((state) => {
        if (state.pull !== null) seen.push(state.pull.receivedBytes)
      })
    }, 1)
    const info = await sources.pull({ serverId: server.id })
    clearInterval(polling)
    const copyName = `127.0.0.1_${new URL(app().url).port}-${server.id.slice(0, 8)}.db`
    expect(files.path).toBe(join(dataDir, copyName))
    expect(info.nodes).toEqual([`node-${_name}`])
    expect(requestRows(files.path!)).toEqual(requestRows(app().database))
    const state = await sources.state({})
    expect(state.lastPull?.incremental).toBe(false)
    expect(state.lastPull?.receivedBytes).toBe(state.lastPull?.totalBytes)
    expect(state.servers[0]?.copyBytes).toBeGreaterThan(0)
    expect(state.dataset).toEqual([{ kind: 'server', label: app().url, serverId: server.id }])

    // More traffic, then a refresh: only the new requests travel, and the copy matches again.
    const before = (await new RemoteClient(app().url, TOKEN).info()).requests
    for (let i = 0; i < 9; i++) await app().get('/api/items/3')
    await waitFor('9 more requests written', async () => {
      return (await new RemoteClient(app().url, TOKEN).info()).requests === before + 9
    })
    const refreshed = await sources.refresh({})
    expect(refreshed.requestCount).toBe(before + 9)
    expect((await sources.state({})).lastPull?.incremental).toBe(true)
    expect(requestRows(files.path!)).toEqual(requestRows(app().database))

    // The level change reaches the server's own file; the copy shows it too.
    const route = '/api/items/:id'
    const endpoint = (await files.endpoints(RANGE)).find((row) => row.route === route)!
    expect(levelIn(app().database, 'GET', route)).toBe(1)
    const change = await sources.setLevel({ endpointId: endpoint.id, level: 3 })
    expect(change.sources).toEqual([
      {
        source: { kind: 'server', label: app().url, serverId: server.id },
        accepted: true,
        message: null,
      },
    ])
    expect(change.endpoint.level).toBe(3)
    expect(levelIn(app().database, 'GET', route)).toBe(3)
    expect(levelIn(files.path!, 'GET', route)).toBe(3)
    expect(dataFiles(dataDir)).toEqual([copyName])

    // A copy that does not match the server any more (here: a request the server never had,
    // as after the server's file was replaced) is pulled again in full by the next refresh.
    const copy = new Database(files.path!)
    copy
      .prepare(
        'INSERT INTO request (id, endpoint_id, time, duration_us, status, version_id, user_group_id, client_ip_id, aborted, node_id) SELECT id + 1000000, endpoint_id, time, duration_us, status, version_id, user_group_id, client_ip_id, aborted, node_id FROM request ORDER BY id DESC LIMIT 1',
      )
      .run()
    copy.close()
    await sources.refresh({})
    expect((await sources.state({})).lastPull?.incremental).toBe(false)
    expect(requestRows(files.path!)).toEqual(requestRows(app().database))
    await sources.close()
    await files.close()
  })
})

describe('two servers as one', () => {
  it('shows the sum of both nodes with a per-node split', async () => {
    const { files, sources } = newServices('merged')
    const a = await sources.addServer({ url: koa.url, token: TOKEN })
    const b = await sources.addServer({ url: `${express.url}/routemeter`, token: TOKEN })
    const info = await sources.open({
      sources: [
        { kind: 'server', serverId: a.id },
        { kind: 'server', serverId: b.id },
      ],
    })
    const koaRows = requestRows(koa.database).length
    const expressRows = requestRows(express.database).length
    expect(info.requestCount).toBe(koaRows + expressRows)
    const split = await files.nodeBreakdown(RANGE)
    expect(new Map(split.map((share) => [share.node, share.hits]))).toEqual(
      new Map([
        ['node-express', expressRows],
        ['node-koa', koaRows],
      ]),
    )
    const state = await sources.state({})
    expect(state.dataset?.map((source) => source.kind)).toEqual(['server', 'server'])
    await sources.close()
    await files.close()
  })
})

describe('web mode without --allow-remote', () => {
  it('contacts no server', async () => {
    const files = new DashboardService({ watch: false })
    const sources = new SourcesService({
      files,
      dataDir: join(temp.dir, 'no-remote'),
      remoteAllowed: false,
      watch: false,
    })
    await expect(sources.addServer({ url: koa.url, token: TOKEN })).rejects.toMatchObject({
      code: 'READ_ONLY',
      message: expect.stringContaining('--allow-remote'),
    })
    expect((await sources.state({})).remoteAllowed).toBe(false)
    await sources.close()
    await files.close()
  })
})

describe('failures', () => {
  let fake: Server | undefined
  afterEach(async () => {
    fake?.closeAllConnections()
    await new Promise((resolve) => fake?.close(resolve) ?? resolve(undefined))
    fake = undefined
  })

  /** A server whose /routemeter/info is right and whose snapshot does what `snapshot` does. */
  async function fakeServer(
    snapshot: (res: import('node:http').ServerResponse) => void,
  ): Promise<string> {
    fake = createServer((req, res) => {
      if (req.url === '/routemeter/info') {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ schemaVersion: 2, node: 'fake', requests: 0 }))
      } else if (req.url?.startsWith('/routemeter/snapshot')) snapshot(res)
      else res.writeHead(404).end()
    })
    fake.listen(0, '127.0.0.1')
    await new Promise((resolve) => fake!.once('listening', resolve))
    return `http://127.0.0.1:${(fake.address() as AddressInfo).port}`
  }

  // Random bytes do not compress: 4 MiB of gzip that takes a while to send.
  const garbage = gzipSync(randomBytes(4 * 1024 * 1024))

  it('an interrupted download leaves no file and says why', async () => {
    const url = await fakeServer((res) => {
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': garbage.length })
      res.write(garbage.subarray(0, 2000), () => res.socket?.destroy())
    })
    const { files, sources, dataDir } = newServices('interrupted')
    const server = await sources.addServer({ url, token: TOKEN })
    const pull = sources.pull({ serverId: server.id })
    await expect(pull).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED' })
    await expect(pull).rejects.toThrow(/interrupted after 2000 of \d+ bytes .*nothing was saved/)
    expect(dataFiles(dataDir)).toEqual([])
    expect((await sources.state({})).pullError?.code).toBe('DOWNLOAD_FAILED')
    expect(files.path).toBeUndefined()
    await sources.close()
    await files.close()
  })

  it('a killed server process mid-download leaves no file', async () => {
    const victim = await startRemoteApp(temp.dir, 'express', 'victim')
    spare.push(victim.child)
    // The collector creates its file at its first write: before that the server says 503.
    await victim.get('/api/items')
    await waitFor('the victim to write', async () => {
      return (await new RemoteClient(victim.url, TOKEN).info()).requests === 1
    })
    const { files, sources, dataDir } = newServices('killed')
    const server = await sources.addServer({ url: victim.url, token: TOKEN })
    // Killed as soon as the response has started: whatever came is not a file.
    const started = waitFor(
      'the download to start',
      async () => (await sources.state({})).pull?.phase === 'downloading',
      10_000,
      1,
    )
    const pull = sources.pull({ serverId: server.id })
    await started
    victim.child.kill('SIGKILL')
    const outcome = await pull.then(
      () => 'completed',
      (error: { code: string }) => error.code,
    )
    // On loopback a small file may be sent whole before the kill lands; either way no half file.
    expect(['completed', 'DOWNLOAD_FAILED']).toContain(outcome)
    const left = dataFiles(dataDir)
    expect(left.filter((name) => name.includes('.part'))).toEqual([])
    if (outcome === 'DOWNLOAD_FAILED') expect(left).toEqual([])
    await sources.close()
    await files.close()
  })

  it("a server that cannot send its file says why (the collector's own words)", async () => {
    const url = await fakeServer((res) => {
      res.writeHead(503, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: 'the metrics file /srv/m.db does not exist (yet)' }))
    })
    const { files, sources, dataDir } = newServices('unavailable')
    const server = await sources.addServer({ url, token: TOKEN })
    const pull = sources.pull({ serverId: server.id })
    await expect(pull).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED' })
    await expect(pull).rejects.toThrow(/HTTP 503: the metrics file \/srv\/m.db does not exist/)
    expect(dataFiles(dataDir)).toEqual([])
    await sources.close()
    await files.close()
  })

  it('a cancelled download leaves no file', async () => {
    const url = await fakeServer((res) => {
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': garbage.length })
      res.write(garbage.subarray(0, 100_000)) // then nothing: a stalled download
    })
    const { files, sources, dataDir } = newServices('cancelled')
    const server = await sources.addServer({ url, token: TOKEN })
    const pull = sources.pull({ serverId: server.id })
    await waitFor(
      'bytes to arrive',
      async () => ((await sources.state({})).pull?.receivedBytes ?? 0) > 0,
    )
    const during = await sources.state({})
    expect(during.pull?.totalBytes).toBe(garbage.length)
    await sources.cancelPull({})
    await expect(pull).rejects.toMatchObject({ code: 'CANCELLED' })
    expect(dataFiles(dataDir)).toEqual([])
    expect((await sources.state({})).pull).toBeNull()
    await sources.close()
    await files.close()
  })

  it('a server that is not Routemeter, an unreachable one, and a snapshot that is not a metrics file', async () => {
    const { files, sources, dataDir } = newServices('others')
    const plain = createServer((_req, res) => res.writeHead(404).end('Not Found'))
    fake = plain
    plain.listen(0, '127.0.0.1')
    await new Promise((resolve) => plain.once('listening', resolve))
    const plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`
    await expect(sources.addServer({ url: plainUrl, token: TOKEN })).rejects.toMatchObject({
      code: 'NOT_ROUTEMETER',
    })
    // A port nobody listens on (the closed server's).
    const closed = createServer()
    closed.listen(0, '127.0.0.1')
    await new Promise((resolve) => closed.once('listening', resolve))
    const closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`
    await new Promise((resolve) => closed.close(resolve))
    await expect(sources.addServer({ url: closedUrl, token: TOKEN })).rejects.toThrow(
      /Cannot reach .*connection was refused/,
    )
    plain.closeAllConnections()
    await new Promise((resolve) => plain.close(resolve))

    const url = await fakeServer((res) => {
      const text = gzipSync('time,endpoint\n1,/a\n')
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': text.length })
      res.end(text)
    })
    const server = await sources.addServer({ url, token: TOKEN })
    await expect(sources.pull({ serverId: server.id })).rejects.toMatchObject({
      code: 'NOT_SQLITE',
    })
    expect(dataFiles(dataDir)).toEqual([])
    await sources.close()
    await files.close()
  })
})
