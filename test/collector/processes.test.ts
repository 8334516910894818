/*
 * Child processes running the BUILT package (collector/dist) with plain node:
 * several processes writing one file, a process killed with SIGKILL under
 * load, and loading the package from CommonJS and from ESM.
 */
import Database from 'better-sqlite3'
import { existsSync } from 'node:fs'
import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SCHEMA_VERSION } from 'routemeter/schema'
import {
  buildPackage,
  countRequests,
  defer,
  FIXTURES,
  makeTempDir,
  removeTempDirs,
  request,
  ROOT,
  tempDatabase,
  waitFor,
  withDb,
} from './helpers.js'

beforeAll(() => {
  buildPackage()
}, 120_000)
afterAll(removeTempDirs)

interface Message {
  type: string
  port?: number
  version?: { name: string; source: string }
  stats?: {
    written: number
    pending: number
    dropped: number
    errors: number
    writerThread: boolean
  }
  errors?: string[]
}

/** A child running fixtures/serve.mjs, with a queue of the messages it sent. */
class Service {
  readonly child: ChildProcess
  private readonly messages: Message[] = []
  private waiting: (() => void) | undefined
  readonly exited: Promise<number | null>
  port = 0

  constructor(
    database: string,
    framework: 'express' | 'koa',
    flushInterval = 250,
    flushOnExit = true,
  ) {
    const args = [database, framework, String(flushInterval), String(flushOnExit)]
    this.child = fork(join(FIXTURES, 'serve.mjs'), args, {
      cwd: ROOT,
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.child.on('message', (message: Message) => {
      this.messages.push(message)
      this.waiting?.()
    })
    this.exited = new Promise((resolveExit) => {
      this.child.once('exit', (code) => {
        this.waiting?.()
        resolveExit(code)
      })
    })
    defer(() => {
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
    })
  }

  /** The next message of the given type (earlier ones of other types are dropped). */
  async next(type: string): Promise<Message> {
    for (;;) {
      const index = this.messages.findIndex((m) => m.type === type)
      if (index !== -1) return this.messages.splice(index, 1)[0]!
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`serve.mjs exited (${this.child.exitCode}) before sending "${type}"`)
      }
      await new Promise<void>((resolveMessage) => (this.waiting = resolveMessage))
    }
  }

  send(type: string): void {
    this.child.send({ type })
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  async start(): Promise<void> {
    this.send('go')
    this.port = (await this.next('listening')).port!
  }
}

/** Sends `count` requests with at most `parallel` in flight; returns the statuses seen. */
async function load(url: string, count: number, parallel = 8): Promise<number[]> {
  const statuses: number[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++
      const reply =
        i % 5 === 4
          ? await request(`${url}/items`, { method: 'POST', body: 'x' })
          : i % 7 === 6
            ? await request(`${url}/nothing/${i}`)
            : await request(`${url}/items/${i}`)
      statuses.push(reply.status)
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
  return statuses
}

describe('several processes writing one file', () => {
  it('3 processes start on a new file at once and each write all their requests', async () => {
    const database = tempDatabase()
    const services = [
      new Service(database, 'express'),
      new Service(database, 'koa'),
      new Service(database, 'express'),
    ]
    await Promise.all(services.map((s) => s.next('ready')))
    // All bind (and so create and migrate the new file) at the same moment.
    await Promise.all(services.map((s) => s.start()))

    const PER_PROCESS = 120
    const statuses = await Promise.all(services.map((s) => load(s.url, PER_PROCESS, 6)))
    for (const seen of statuses) {
      expect(seen).toHaveLength(PER_PROCESS)
      expect(new Set(seen)).toEqual(new Set([200, 201, 404]))
    }
    for (const s of services) s.send('close')
    const closed = await Promise.all(services.map((s) => s.next('closed')))
    expect(await Promise.all(services.map((s) => s.exited))).toEqual([0, 0, 0])

    for (const c of closed) {
      // Written by each process's writer thread, not on its request path.
      expect(c.stats).toMatchObject({
        written: PER_PROCESS,
        pending: 0,
        dropped: 0,
        writerThread: true,
      })
      // Waiting for another process's lock can fail and be retried: never a lost row, and
      // nothing but lock contention.
      for (const error of c.errors ?? []) expect(error).toMatch(/SQLITE_BUSY/)
    }
    expect(countRequests(database)).toBe(3 * PER_PROCESS)
    withDb(database, (db) => {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok')
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
      expect(db.prepare('SELECT name FROM version').pluck().all()).toEqual(['multi-process'])
      expect(db.prepare("SELECT count(*) FROM meta WHERE key = 'created_at'").pluck().get()).toBe(1)
      // One endpoint per (method, route), whichever process saw it first.
      expect(db.prepare('SELECT method, route FROM endpoint ORDER BY method, route').all()).toEqual(
        [
          { method: 'GET', route: '(unmatched)' },
          { method: 'GET', route: '/items/:id' },
          { method: 'POST', route: '/items' },
        ],
      )
      // Each process's rows are all there, by status.
      const byStatus = db
        .prepare('SELECT status, count(*) AS n FROM request GROUP BY status ORDER BY status')
        .all()
      const expected = { 200: 0, 201: 0, 404: 0 } as Record<number, number>
      for (const seen of statuses) for (const status of seen) expected[status]!++
      expect(byStatus).toEqual(
        Object.entries(expected).map(([status, n]) => ({ status: Number(status), n })),
      )
    })
  })
})

describe('a process killed with SIGKILL under load', () => {
  it('leaves a file that passes integrity_check with every row written before', async () => {
    const database = tempDatabase()
    for (let round = 1; round <= 3; round++) {
      const service = new Service(database, round === 2 ? 'koa' : 'express', 20)
      await service.next('ready')
      await service.start()
      const before = round === 1 ? 0 : countRequests(database)

      let stop = false
      const hammer = (async () => {
        while (!stop) await load(service.url, 16, 8).catch(() => (stop = true))
      })()
      // Rows are committed while the load goes on...
      const committed = await waitFor('rows to be committed', () => {
        const n = countRequests(database)
        return n >= before + 200 && n
      })
      // ...and the process dies in the middle of it.
      service.child.kill('SIGKILL')
      await service.exited
      stop = true
      await hammer
      expect(service.child.signalCode).toBe('SIGKILL')

      const db = new Database(database)
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok')
        expect(db.prepare('SELECT count(*) FROM request').pluck().get()).toBeGreaterThanOrEqual(
          committed,
        )
      } finally {
        db.close()
      }
    }
  })
})

describe('flushOnExit', () => {
  it.each([
    ['process.exit()', 'exit', true, 12],
    ['SIGTERM', 'SIGTERM', true, 12],
    ['SIGINT', 'SIGINT', true, 12],
    ['process.exit() with flushOnExit: false', 'exit', false, 0],
  ] as const)('%s writes what is buffered: %s', async (_name, how, flushOnExit, expected) => {
    const database = tempDatabase()
    // No timer write during the test: only the exit can write the rows.
    const service = new Service(database, 'express', 600_000, flushOnExit)
    await service.next('ready')
    await service.start()
    await waitFor(
      'the discovered endpoints',
      () =>
        withDb(
          database,
          (db) => db.prepare('SELECT count(*) FROM endpoint').pluck().get() as number,
        ) > 0,
    )
    await load(service.url, 12, 3)
    expect(countRequests(database)).toBe(0)
    if (how === 'exit') service.send('exit')
    else service.child.kill(how)
    await service.exited
    // The process's connection was the last one: the file is whole, without its -wal and -shm.
    if (flushOnExit) {
      expect(existsSync(`${database}-wal`)).toBe(false)
      expect(existsSync(`${database}-shm`)).toBe(false)
    }
    if (how === 'exit') expect(service.child.exitCode).toBe(0)
    // After writing, the collector lets the signal end the process as it would have.
    else expect(service.child.signalCode).toBe(how)
    expect(countRequests(database)).toBe(expected)
  })
})

describe('an app that never closes its collector', () => {
  it('ends when its work is done (the writer thread keeps nothing alive), its rows written at exit', () => {
    const database = tempDatabase()
    const started = Date.now()
    execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { createCollector } = await import('routemeter')
         const http = await import('node:http')
         const c = createCollector({ database: ${JSON.stringify(database)}, flushInterval: 600000 })
         const server = http.createServer((req, res) => {
           c.track(req, res)
           c.setRoute(req, '/once')
           res.end('ok')
         })
         server.listen(0, '127.0.0.1', async () => {
           await (await fetch('http://127.0.0.1:' + server.address().port + '/')).text()
           server.close()
         })`,
      ],
      { cwd: ROOT, timeout: 20_000 },
    )
    // Far less than the flush interval: only the exit hook can have written the row.
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(countRequests(database)).toBe(1)
  })
})

describe('the built package', () => {
  // One real request through a plain http server, written by the writer thread, whose entry
  // the ESM build finds from its module URL and the CommonJS build from __filename.
  const script = `
    const summary = (m) => ({
      bind: typeof m.bind, koa: typeof m.koa, express: typeof m.express,
      createCollector: typeof m.createCollector, SchemaTooNewError: typeof m.SchemaTooNewError,
      SCHEMA_VERSION: m.SCHEMA_VERSION, UNMATCHED_ROUTE: m.UNMATCHED_ROUTE,
      keys: Object.keys(m).filter((k) => k !== 'default' && k !== '__esModule').sort(),
    })
    const use = async (m, http, database) => {
      const c = m.createCollector({ database, version: 'pkg', node: 'child' })
      c.discover([{ method: 'GET', route: '/from-child' }])
      const server = http.createServer((req, res) => {
        c.track(req, res)
        c.setRoute(req, '/from-child')
        res.end('ok')
      })
      await new Promise((listening) => server.listen(0, '127.0.0.1', listening))
      const body = await (await fetch('http://127.0.0.1:' + server.address().port + '/')).text()
      server.close()
      const flushed = c.flush()
      const stats = c.stats()
      c.close()
      return { body, flushed, stats }
    }`

  function run(args: string[]): Record<string, unknown> {
    const out = execFileSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' })
    return JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>
  }

  it('loads with require() and with import, with the same exports, and writes through its thread', () => {
    const dir = makeTempDir()
    const cjsDb = join(dir, 'cjs.db')
    const esmDb = join(dir, 'esm.db')
    const cjs = run([
      '-e',
      `${script}
       ;(async () => {
         const m = require('routemeter')
         const schema = require('routemeter/schema')
         const used = await use(m, require('node:http'), ${JSON.stringify(cjsDb)})
         console.log(JSON.stringify({ ...summary(m), schemaVersion: schema.SCHEMA_VERSION,
           file: require.resolve('routemeter'), used }))
       })()`,
    ])
    const esm = run([
      '--input-type=module',
      '-e',
      `${script}
       const m = await import('routemeter')
       const schema = await import('routemeter/schema')
       const used = await use(m, await import('node:http'), ${JSON.stringify(esmDb)})
       console.log(JSON.stringify({ ...summary(m), schemaVersion: schema.SCHEMA_VERSION,
         file: import.meta.resolve('routemeter'), used }))`,
    ])
    for (const loaded of [cjs, esm]) {
      expect(loaded).toMatchObject({
        bind: 'function',
        koa: 'function',
        express: 'function',
        createCollector: 'function',
        SchemaTooNewError: 'function',
        SCHEMA_VERSION,
        schemaVersion: SCHEMA_VERSION,
        UNMATCHED_ROUTE: '(unmatched)',
        used: {
          body: 'ok',
          flushed: true,
          stats: { written: 1, pending: 0, dropped: 0, errors: 0, writerThread: true },
        },
      })
    }
    expect(cjs.file).toMatch(/collector[/\\]dist[/\\]cjs[/\\]index\.js$/)
    expect(esm.file).toMatch(/collector\/dist\/esm\/index\.js$/)
    expect(cjs.keys).toEqual(esm.keys)
    for (const database of [cjsDb, esmDb]) {
      withDb(database, (db) => {
        expect(db.prepare('SELECT method, route FROM endpoint').all()).toEqual([
          { method: 'GET', route: '/from-child' },
        ])
        expect(
          db
            .prepare(
              `SELECT e.route, r.status, n.name AS node FROM request r
               JOIN endpoint e ON e.id = r.endpoint_id JOIN node n ON n.id = r.node_id`,
            )
            .all(),
        ).toEqual([{ route: '/from-child', status: 200, node: 'child' }])
      })
    }
  })
})
