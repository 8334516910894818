/*
 * The collector never takes the app down and never changes a response: with
 * an unwritable, locked, corrupt, deleted or full metrics file the app answers
 * exactly as without the collector, errors go to onError (by default one
 * warning per kind of error, not one per request), and rows that could not be
 * written are written once the file is usable again.
 */
import Database from 'better-sqlite3'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import Koa from 'koa'
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { bind, type RoutemeterHandle } from 'routemeter'
import { SCHEMA_VERSION } from 'routemeter/schema'
import {
  countRequests,
  defer,
  endpointKeys,
  errorSink,
  FIXTURES,
  listen,
  makeTempDir,
  readEndpoints,
  readRequests,
  removeTempDirs,
  request,
  sleepAtLeast,
  tempDatabase,
  visible,
  waitFor,
  withDb,
} from './helpers.js'

afterAll(removeTempDirs)

// ---------------------------------------------------------------- apps and their answers

type Framework = 'express' | 'koa' | 'fastify' | 'hono'

/**
 * The same small app, with or without the collector; deterministic answers.
 * `first` runs on the app before its routes (where bind() goes).
 */
function faultApp(framework: Framework, first: (app: object) => void = () => undefined): object {
  if (framework === 'express') {
    const app = express()
    first(app)
    app.use(express.text())
    app.get('/json/:id', (req, res) => {
      res.json({ id: req.params.id, list: [1, 2, 3] })
    })
    app.post('/echo', (req, res) => {
      res
        .status(201)
        .type('text/plain')
        .send(`echo:${String(req.body)}`)
    })
    app.get('/teapot', () => {
      throw Object.assign(new Error('teapot'), { status: 418 })
    })
    app.get('/stream', async (_req, res) => {
      res.type('text/plain')
      for (let i = 0; i < 3; i++) {
        res.write(`part ${i}\n`)
        await sleepAtLeast(5)
      }
      res.end()
    })
    app.get('/never', (_req, res) => {
      res.send('never requested')
    })
    app.set('env', 'test')
    return app
  }
  if (framework === 'fastify') {
    const app = Fastify({ logger: false })
    first(app)
    app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_req, body, done) =>
      done(null, body),
    )
    app.get('/json/:id', async (request) => ({
      id: (request.params as { id: string }).id,
      list: [1, 2, 3],
    }))
    app.post('/echo', async (request, reply) => {
      reply.code(201).type('text/plain')
      return `echo:${String(request.body)}`
    })
    app.get('/teapot', async () => {
      throw Object.assign(new Error('teapot'), { statusCode: 418 })
    })
    app.get('/stream', async (_request, reply) => {
      reply.type('text/plain')
      return 'part 0\npart 1\npart 2\n'
    })
    return app
  }
  if (framework === 'hono') {
    const app = new Hono()
    first(app)
    app.get('/json/:id', (c) => c.json({ id: c.req.param('id'), list: [1, 2, 3] }))
    app.post('/echo', async (c) => c.text(`echo:${await c.req.text()}`, 201))
    app.get('/teapot', () => {
      throw new HTTPException(418, { message: 'teapot' })
    })
    app.get('/stream', (c) => c.text('part 0\npart 1\npart 2\n'))
    return app
  }
  const app = new Koa()
  first(app)
  app.silent = true
  app.use(async (ctx) => {
    if (ctx.path.startsWith('/json/')) ctx.body = { id: ctx.path.slice(6), list: [1, 2, 3] }
    else if (ctx.path === '/echo' && ctx.method === 'POST') {
      let text = ''
      for await (const chunk of ctx.req) text += String(chunk)
      ctx.status = 201
      ctx.body = `echo:${text}`
    } else if (ctx.path === '/teapot') ctx.throw(418)
    else if (ctx.path === '/stream') ctx.body = 'part 0\npart 1\npart 2\n'
  })
  return app
}

/** A fixed series of requests; returns what the client saw. */
async function exercise(url: string): Promise<unknown[]> {
  const seen = []
  for (let round = 0; round < 3; round++) {
    seen.push(visible(await request(`${url}/json/${round}`)))
    seen.push(
      visible(
        await request(`${url}/echo`, {
          method: 'POST',
          headers: { 'content-type': 'text/plain' },
          body: `hello ${round}`,
        }),
      ),
    )
    seen.push(visible(await request(`${url}/teapot`)))
    seen.push(visible(await request(`${url}/stream`)))
    seen.push(visible(await request(`${url}/missing/${round}`)))
    seen.push(visible(await request(`${url}/json/${round}`, { method: 'HEAD' })))
  }
  return seen
}
/** Requests per exercise(). */
const EXERCISED = 18

const baselines = new Map<Framework, unknown[]>()

/** What the app answers without any collector. */
async function baseline(framework: Framework): Promise<unknown[]> {
  let answers = baselines.get(framework)
  if (answers === undefined) {
    const { url } = await listen(faultApp(framework))
    answers = await exercise(url)
    baselines.set(framework, answers)
  }
  return answers
}

interface Bound {
  handle: RoutemeterHandle
  url: string
  warnings: () => string[]
}

/** The fault app with the collector bound to `database`; console.warn is recorded. */
async function boundApp(framework: Framework, options: Parameters<typeof bind>[1]): Promise<Bound> {
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined)
  defer(() => warn.mockRestore())
  let handle: RoutemeterHandle | undefined
  const app = faultApp(framework, (created) => {
    handle = bind(created, { flushInterval: 50, ...options })
  })
  defer(() => handle!.close())
  const { url } = await listen(app)
  return {
    handle: handle!,
    url,
    warnings: () =>
      warn.mock.calls.map((args) => String(args[0])).filter((w) => w.includes('[routemeter]')),
  }
}

/** Keeps serving requests until the collector has failed `attempts` times (retries are 2 s apart). */
async function untilErrors(bound: Bound, attempts: number): Promise<void> {
  await waitFor(`${attempts} failed attempts`, async () => {
    await request(`${bound.url}/json/again`)
    return bound.handle.stats().errors >= attempts
  })
}

// ---------------------------------------------------------------- mounts

/** Why a mount is impossible here, or undefined if `mount` works. */
function mountUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `mount is Linux-only (platform ${process.platform})`
  const dir = makeTempDir('routemeter-mount-probe-')
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' })
    execFileSync('umount', [dir], { stdio: 'pipe' })
    return undefined
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim()
    return `cannot mount here: ${stderr || (error as Error).message}`
  }
}
const noMount = mountUnavailable()
if (noMount !== undefined) {
  console.log(`skipping the read-only and full-disk cases: ${noMount}`)
}

function mount(args: string[], dir: string): void {
  execFileSync('mount', [...args, dir], { stdio: 'pipe' })
  defer(() => {
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' })
    } catch {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' })
    }
  })
}

/** A metrics file with a few rows, written and closed by a collector. */
async function existingFile(database: string): Promise<number> {
  const app = faultApp('express')
  const handle = bind(app, { database })
  const { url, close } = await listen(app)
  await request(`${url}/json/seed`)
  handle.close()
  await close()
  return countRequests(database)
}

// ---------------------------------------------------------------- the cases

describe('faults', () => {
  it.each<Framework>(['express', 'koa', 'fastify', 'hono'])(
    'a healthy file, %s: same answers as without the collector, every request recorded',
    async (framework) => {
      const database = tempDatabase()
      const bound = await boundApp(framework, { database })
      expect(await exercise(bound.url)).toEqual(await baseline(framework))
      expect(bound.handle.flush()).toBe(true)
      expect(countRequests(database)).toBe(EXERCISED)
      expect(bound.warnings()).toEqual([])
    },
  )

  it.each<Framework>(['express', 'koa', 'fastify', 'hono'])(
    'a corrupt file (random bytes), %s: same answers, one warning, file untouched',
    async (framework) => {
      const database = tempDatabase()
      const garbage = randomBytes(16 * 1024)
      writeFileSync(database, garbage)
      const bound = await boundApp(framework, { database })
      expect(await exercise(bound.url)).toEqual(await baseline(framework))
      await untilErrors(bound, 2)
      expect(bound.handle.flush()).toBe(false)

      expect(bound.warnings()).toHaveLength(1)
      expect(bound.warnings()[0]).toMatch(/file is not a database/)
      expect(readFileSync(database).equals(garbage)).toBe(true)
      expect(existsSync(`${database}-wal`)).toBe(false)
      expect(bound.handle.stats()).toMatchObject({ written: 0, dropped: 0 })
      expect(bound.handle.stats().pending).toBeGreaterThanOrEqual(EXERCISED)
    },
  )

  it('a text file: errors reach onError with their code, the file is untouched', async () => {
    const database = tempDatabase('notes.txt')
    writeFileSync(database, 'these are my notes, not a database\n'.repeat(50))
    const sink = errorSink()
    const bound = await boundApp('express', { database, onError: sink.onError })
    expect(await exercise(bound.url)).toEqual(await baseline('express'))
    await untilErrors(bound, 2)
    expect(bound.warnings()).toEqual([])
    expect(sink.errors.length).toBeGreaterThanOrEqual(2)
    for (const error of sink.errors) expect((error as { code?: string }).code).toBe('SQLITE_NOTADB')
    expect(readFileSync(database, 'utf8')).toBe('these are my notes, not a database\n'.repeat(50))
  })

  it('a database path in a missing folder: the folder is created', async () => {
    const dir = makeTempDir()
    const database = join(dir, 'var', 'lib', 'metrics', 'app.db')
    const bound = await boundApp('koa', { database })
    expect(await exercise(bound.url)).toEqual(await baseline('koa'))
    expect(bound.handle.flush()).toBe(true)
    expect(statSync(join(dir, 'var/lib/metrics')).isDirectory()).toBe(true)
    expect(countRequests(database)).toBe(EXERCISED)
    expect(bound.warnings()).toEqual([])
  })

  it('another process holding an EXCLUSIVE lock: answers unchanged, rows written after it lets go', async () => {
    const database = tempDatabase()
    const before = await existingFile(database)
    const locker = spawn(process.execPath, [join(FIXTURES, 'hold-lock.mjs'), database], {
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    defer(() => {
      if (locker.exitCode === null) locker.kill('SIGKILL')
    })
    await new Promise<void>((resolveLocked, reject) => {
      locker.stdout.once('data', () => resolveLocked())
      locker.once('exit', (code) => reject(new Error(`hold-lock.mjs exited with ${code}`)))
    })

    const bound = await boundApp('express', { database })
    expect(await exercise(bound.url)).toEqual(await baseline('express'))
    // A lock is routine until it outlasts LOCK_REPORT_AFTER_MS: then it is reported, once.
    await untilErrors(bound, 1)
    expect(bound.handle.flush()).toBe(false)
    expect(bound.warnings()).toHaveLength(1)
    expect(bound.warnings()[0]).toMatch(/database is locked/)
    expect(countRequests(database)).toBe(before)

    const served = bound.handle.stats().pending
    locker.stdin.end()
    await new Promise((resolveExit) => locker.once('exit', resolveExit))
    await waitFor('the buffered rows to be written', () => bound.handle.flush())
    expect(countRequests(database)).toBe(before + served)
    expect(bound.handle.stats()).toMatchObject({ pending: 0, dropped: 0 })
    expect(withDb(database, (db) => db.pragma('integrity_check', { simple: true }))).toBe('ok')
  })

  it.each([
    ['the file and its -wal and -shm', ['', '-wal', '-shm']],
    ['only the file', ['']],
  ])(
    '%s deleted while the app runs: reopened, recreated, nothing lost',
    async (_name, suffixes) => {
      const database = tempDatabase()
      const sink = errorSink()
      const bound = await boundApp('express', { database, onError: sink.onError, version: 'v9' })
      expect(await exercise(bound.url)).toEqual(await baseline('express'))
      expect(bound.handle.flush()).toBe(true)
      expect(countRequests(database)).toBe(EXERCISED)

      for (const suffix of suffixes) rmSync(database + suffix, { force: true })
      expect(await exercise(bound.url)).toEqual(await baseline('express'))
      await waitFor('the file to be recreated with the new rows', () => {
        bound.handle.flush()
        return existsSync(database) && countRequests(database) === EXERCISED
      })
      expect(sink.errors.map((e) => e.message)).toEqual([
        expect.stringMatching(/deleted or replaced; reopening it/),
      ])
      // The new file is complete: schema, version, discovered endpoints, requests.
      expect(withDb(database, (db) => db.pragma('user_version', { simple: true }))).toBe(
        SCHEMA_VERSION,
      )
      expect(readRequests(database).every((r) => r.version === 'v9')).toBe(true)
      expect(endpointKeys(database)).toEqual([
        'GET (unmatched)',
        'GET /json/:id',
        'GET /never',
        'GET /stream',
        'GET /teapot',
        'HEAD /json/:id',
        'POST /echo',
      ])
      // An endpoint never requested still has no last request time.
      await waitFor('no pending writes', () => bound.handle.flush())
      const never = readEndpoints(database).find((e) => e.route === '/never')!
      expect(never.last_requested).toBeNull()
      const json = readEndpoints(database).find((e) => e.route === '/json/:id')!
      expect(json.last_requested).toBeGreaterThan(Date.now() - 60_000)
      expect(withDb(database, (db) => db.pragma('integrity_check', { simple: true }))).toBe('ok')
    },
  )

  it.skipIf(noMount !== undefined)(
    'a read-only file: same answers, one warning, the file unchanged',
    async () => {
      const source = makeTempDir()
      const before = await existingFile(join(source, 'metrics.db'))
      const readOnly = makeTempDir()
      mount(['--bind', '-o', 'ro', source], readOnly)
      expect(() => writeFileSync(join(readOnly, 'probe'), 'x')).toThrow(/EROFS/)

      const database = join(readOnly, 'metrics.db')
      const bound = await boundApp('express', { database })
      expect(await exercise(bound.url)).toEqual(await baseline('express'))
      await untilErrors(bound, 2)
      expect(bound.handle.flush()).toBe(false)
      expect(bound.warnings()).toHaveLength(1)
      expect(bound.warnings()[0]).toMatch(/open failed .*(unable to open database file|readonly)/)
      bound.handle.close()
      expect(countRequests(join(source, 'metrics.db'))).toBe(before)
    },
  )

  it.skipIf(noMount !== undefined)(
    'a full disk: same answers, rows kept and written once space is freed',
    async () => {
      const dir = makeTempDir()
      mount(['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs'], dir)
      const database = join(dir, 'metrics.db')
      const bound = await boundApp('express', { database })
      expect(bound.handle.flush()).toBe(true)

      // Fill the file system.
      const filler = join(dir, 'filler')
      const fd = openSync(filler, 'w')
      const chunk = Buffer.alloc(16 * 1024, 1)
      try {
        for (;;) writeSync(fd, chunk)
      } catch (error) {
        expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC')
      } finally {
        closeSync(fd)
      }

      let served = 0
      await waitFor('a write to fail for lack of space', async () => {
        expect(await exercise(bound.url)).toEqual(await baseline('express'))
        served += EXERCISED
        return !bound.handle.flush()
      })
      expect(bound.warnings()).toHaveLength(1)
      expect(bound.warnings()[0]).toMatch(/write failed .*database or disk is full/)
      for (let i = 0; i < 3; i++) {
        expect(await exercise(bound.url)).toEqual(await baseline('express'))
        served += EXERCISED
      }
      expect(bound.warnings()).toHaveLength(1)

      rmSync(filler)
      await waitFor('the kept rows to be written', () => bound.handle.flush())
      expect(countRequests(database)).toBe(served)
      expect(bound.handle.stats()).toMatchObject({ pending: 0, dropped: 0 })
      expect(withDb(database, (db) => db.pragma('integrity_check', { simple: true }))).toBe('ok')
      bound.handle.close()
    },
  )

  it('close() right after a failed open still writes what is buffered', async () => {
    const database = join(makeTempDir(), 'metrics.db')
    mkdirSync(database) // a folder in the way: opening fails, the next attempt is 2 s away
    const sink = errorSink()
    const bound = await boundApp('express', { database, onError: sink.onError })
    expect(await exercise(bound.url)).toEqual(await baseline('express'))
    expect(bound.handle.flush()).toBe(false)
    expect(sink.errors.length).toBeGreaterThan(0)
    rmSync(database, { recursive: true })
    bound.handle.close()
    expect(countRequests(database)).toBe(EXERCISED)
  })

  it('with maxBufferedRows reached, requests are dropped, counted and reported, answers unchanged', async () => {
    const database = join(makeTempDir(), 'metrics.db')
    mkdirSync(database) // a folder where the file should be: it can never be opened
    const sink = errorSink()
    const bound = await boundApp('koa', { database, maxBufferedRows: 5, onError: sink.onError })
    expect(await exercise(bound.url)).toEqual(await baseline('koa'))
    bound.handle.flush()
    expect(bound.handle.stats()).toMatchObject({ pending: 5, dropped: EXERCISED - 5, written: 0 })
    // Each loss is reported once: in one message, or several if a timer write came in between.
    const reported = sink.errors
      .map((e) => /dropped (\d+) request/.exec(e.message)?.[1])
      .filter((n) => n !== undefined)
      .reduce((sum, n) => sum + Number(n), 0)
    expect(reported).toBe(EXERCISED - 5)
  })
})

describe('values in the file that the writer did not write', () => {
  it.each([
    ['a duration of -2^63', 'duration_us = -9223372036854775808'],
    ['a duration of 2^62', 'duration_us = 4611686018427387904'],
    ['a negative time', 'time = -5'],
    ['a status of 70000', 'status = 70000'],
    ['a NULL duration after a schema edit', 'duration_us = NULL'],
  ])(
    'a request row with %s: recording goes on, the row is left out of the rollups and reported once',
    async (_name, assignment) => {
      const database = tempDatabase()
      const sink = errorSink()
      const bound = await boundApp('express', { database, onError: sink.onError })
      expect(await exercise(bound.url)).toEqual(await baseline('express'))
      expect(bound.handle.flush()).toBe(true)
      // Another program adds a row out of range (STRICT lets an INTEGER of any size in).
      withDb(database, (db) => {
        db.prepare(
          `INSERT INTO request (endpoint_id, time, duration_us, status, version_id, node_id)
           SELECT endpoint_id, time, duration_us, status, version_id, node_id FROM request LIMIT 1`,
        ).run()
        if (assignment.includes('NULL')) {
          // The edit SQLite documents for dropping a NOT NULL constraint.
          db.unsafeMode(true)
          db.pragma('writable_schema = ON')
          db.prepare(
            `UPDATE sqlite_schema SET sql = replace(sql, 'duration_us   INTEGER NOT NULL', 'duration_us   INTEGER')
             WHERE name = 'request'`,
          ).run()
          db.pragma('writable_schema = OFF')
          db.pragma(`schema_version = ${Number(db.pragma('schema_version', { simple: true })) + 1}`)
          db.unsafeMode(false)
        }
        db.exec(`UPDATE request SET ${assignment} WHERE id = (SELECT max(id) FROM request)`)
      })
      for (let round = 0; round < 3; round++) {
        expect(await exercise(bound.url)).toEqual(await baseline('express'))
        expect(bound.handle.flush()).toBe(true)
      }
      expect(bound.handle.stats()).toMatchObject({ pending: 0, dropped: 0, written: 4 * EXERCISED })
      const reports = sink.errors.filter((e) => /out of range/.test(e.message))
      expect(reports).toHaveLength(1)
      expect(reports[0]!.message).toMatch(/1 request row/)
      // Every request the collector wrote is in the rollups; the foreign row is not.
      const counted = withDb(database, (db) =>
        db.prepare('SELECT sum(requests) FROM rollup_hour').pluck().get(),
      )
      expect(counted).toBe(4 * EXERCISED)
      expect(sink.errors.filter((e) => !/out of range/.test(e.message))).toEqual([])
    },
  )
})

describe('what clients send cannot grow the file without bound', () => {
  it('spoofed X-Forwarded-For values past maxNewClients are recorded as (other), reported once', async () => {
    const database = tempDatabase()
    const sink = errorSink()
    const app = express()
    app.set('trust proxy', true)
    app.get('/who', (_req, res) => {
      res.send('ok')
    })
    const handle = bind(app, { database, maxNewClients: 10, onError: sink.onError })
    defer(() => handle.close())
    const { url } = await listen(app)
    for (let i = 0; i < 40; i++) {
      const reply = await request(`${url}/who`, { headers: { 'x-forwarded-for': `10.0.0.${i}` } })
      expect(reply.status).toBe(200)
      if (i % 10 === 9) expect(handle.flush()).toBe(true)
    }
    const addresses = withDb(database, (db) =>
      db.prepare('SELECT address FROM client_ip ORDER BY id').pluck().all(),
    )
    expect(addresses).toHaveLength(11)
    expect(addresses).toContain('(other)')
    expect(addresses).toContain('10.0.0.0')
    // Every request is recorded: the first ten under their address, the rest under (other).
    const perIp = withDb(database, (db) =>
      db
        .prepare(
          `SELECT c.address, count(*) AS n FROM request r JOIN client_ip c ON c.id = r.client_ip_id
           GROUP BY c.address`,
        )
        .all(),
    ) as Array<{ address: string; n: number }>
    expect(perIp.find((row) => row.address === '(other)')?.n).toBe(30)
    expect(perIp.reduce((sum, row) => sum + row.n, 0)).toBe(40)
    const reports = sink.errors.filter((e) => /maxNewClients/.test(e.message))
    expect(reports).toHaveLength(1)
    expect(reports[0]!.message).toMatch(/more than 10 new IPs this hour/)
    // An address seen before the limit keeps its own row.
    await request(`${url}/who`, { headers: { 'x-forwarded-for': '10.0.0.3' } })
    expect(handle.flush()).toBe(true)
    expect(
      withDb(database, (db) =>
        db
          .prepare(
            `SELECT count(*) FROM request r JOIN client_ip c ON c.id = r.client_ip_id
             WHERE c.address = '10.0.0.3'`,
          )
          .pluck()
          .get(),
      ),
    ).toBe(2)
  })

  it('a groupBy value of a megabyte is stored as its first 200 characters', async () => {
    const database = tempDatabase()
    const app = express()
    app.get('/user/:n', (_req, res) => {
      res.send('ok')
    })
    const handle = bind(app, {
      database,
      groupBy: (req: express.Request) => String(req.params.n).repeat(1 << 20),
    })
    defer(() => handle.close())
    const { url } = await listen(app)
    for (const n of ['a', 'b', 'c']) expect((await request(`${url}/user/${n}`)).status).toBe(200)
    expect(handle.flush()).toBe(true)
    const names = withDb(database, (db) =>
      db.prepare('SELECT name FROM user_group ORDER BY name').pluck().all(),
    ) as string[]
    expect(names).toEqual(['a'.repeat(200), 'b'.repeat(200), 'c'.repeat(200)])
    expect(statSync(database).size).toBeLessThan(1 << 20)
  })
})

describe('a file overwritten in place (same inode) while the app runs', () => {
  it("another application's database copied over it is left exactly as copied, and nothing is written into it", async () => {
    const database = tempDatabase()
    const sink = errorSink()
    const bound = await boundApp('express', { database, onError: sink.onError })
    expect(await exercise(bound.url)).toEqual(await baseline('express'))
    expect(bound.handle.flush()).toBe(true)

    const other = join(makeTempDir(), 'other.db')
    const app = new Database(other)
    app.exec(
      "CREATE TABLE invoice (id INTEGER PRIMARY KEY, customer TEXT); INSERT INTO invoice (customer) VALUES ('ACME'), ('Initech')",
    )
    app.close()
    const bytes = readFileSync(other)
    const inode = statSync(database).ino
    writeFileSync(database, bytes) // what `cp other.db metrics.db` does: truncate and write
    expect(statSync(database).ino).toBe(inode)

    expect(await exercise(bound.url)).toEqual(await baseline('express'))
    await waitFor('the overwrite to be noticed', () => {
      bound.handle.flush()
      return sink.errors.some((e) => /overwritten in place/.test(e.message))
    })
    expect(await exercise(bound.url)).toEqual(await baseline('express'))
    bound.handle.close()

    expect(readFileSync(database).equals(bytes)).toBe(true)
    expect(existsSync(`${database}-wal`)).toBe(false)
    expect(
      withDb(database, (db) =>
        db.prepare('SELECT customer FROM invoice ORDER BY id').pluck().all(),
      ),
    ).toEqual(['ACME', 'Initech'])
    expect(sink.errors.some((e) => e.name === 'NotRoutemeterFileError')).toBe(true)
  })

  it('a backup of the metrics file restored over it keeps its rows, and recording goes on into it', async () => {
    const database = tempDatabase()
    const sink = errorSink()
    const bound = await boundApp('express', {
      database,
      onError: sink.onError,
      levelPollInterval: 50,
    })
    expect(await exercise(bound.url)).toEqual(await baseline('express'))
    expect(bound.handle.flush()).toBe(true)
    const backup = join(makeTempDir(), 'backup.db')
    const reader = new Database(database, { readonly: true })
    await reader.backup(backup)
    reader.close()
    const backedUp = countRequests(backup)
    expect(backedUp).toBe(EXERCISED)

    // More traffic, checkpointed (as a cluster's other worker would), so the file has grown.
    for (let i = 0; i < 20; i++)
      expect(await exercise(bound.url)).toEqual(await baseline('express'))
    expect(bound.handle.flush()).toBe(true)
    withDb(database, (db) => db.pragma('wal_checkpoint(PASSIVE)'))
    expect(statSync(database).size).toBeGreaterThan(statSync(backup).size)
    // The writer looks at the file at every level poll: it has seen it grow.
    await sleepAtLeast(200)

    const inode = statSync(database).ino
    writeFileSync(database, readFileSync(backup))
    expect(statSync(database).ino).toBe(inode)
    expect(await exercise(bound.url)).toEqual(await baseline('express'))
    await waitFor('the new rows to be written into the restored file', () => {
      bound.handle.flush()
      return countRequests(database) === backedUp + EXERCISED
    })
    expect(sink.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/overwritten in place/),
    ])
    bound.handle.close()
    expect(countRequests(database)).toBe(backedUp + EXERCISED)
    expect(withDb(database, (db) => db.pragma('integrity_check', { simple: true }))).toBe('ok')
  })
})
