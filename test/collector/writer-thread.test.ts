/*
 * The writer thread: requests are appended to a columnar batch on the app's
 * thread and written by a worker thread that owns the file. flush() waits for
 * it; a thread that stops is reported and replaced, and past a few stops the
 * app's thread writes instead; refreshLevels() applies another connection's
 * level change to the very next request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Worker } from 'node:worker_threads'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { Collector } from '../../collector/src/core/collector.js'
import { resolveOptions, type RoutemeterOptions } from '../../collector/src/core/options.js'
import { HeldRequests } from '../../collector/src/writer/held-requests.js'
import type { EndpointState } from '../../collector/src/store/metrics-store.js'
import { decodeRows, RowBatch, type Batch } from '../../collector/src/writer/batch.js'
import { BatchWriter, LOCK_REPORT_AFTER_MS } from '../../collector/src/writer/batch-writer.js'
import { SchemaTooNewError } from '../../collector/src/schema/migrate.js'
import { deserializeError, serializeError } from '../../collector/src/threads/errors.js'
import { startThread } from '../../collector/src/threads/start.js'
import {
  countRequests,
  defer,
  endpointKeys,
  errorSink,
  listen,
  openDb,
  readRequests,
  removeTempDirs,
  request,
  tempDatabase,
  waitFor,
} from './helpers.js'

afterAll(removeTempDirs)

/** A collector on a plain http server whose every request is the endpoint GET /things. */
async function service(options: RoutemeterOptions, thread = true) {
  const collector = new Collector(
    resolveOptions(options),
    { routeOf: () => '/things', ipOf: () => undefined, subject: (req) => req },
    { thread },
  )
  defer(() => collector.close())
  const { url } = await listen((req: IncomingMessage, res: ServerResponse) => {
    collector.track(req, res)
    res.end('thing')
  })
  /** Sends `count` requests one after the other; each must be answered unchanged. */
  const send = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) expect((await request(`${url}/things/${i}`)).body).toBe('thing')
  }
  return { collector, send }
}

/** The collector's writer thread, to stop it as a crash would. */
function writerThreadOf(collector: Collector): Worker {
  const worker = (collector as unknown as { writer: { worker?: Worker } }).writer.worker
  if (worker === undefined) throw new Error('the collector has no writer thread')
  return worker
}

describe('the writer thread', () => {
  it('writes by default; flush() right after bind waits for the thread to start', () => {
    const database = tempDatabase()
    const collector = new Collector(resolveOptions({ database }), {
      routeOf: () => undefined,
      ipOf: () => undefined,
      subject: (req) => req,
    })
    defer(() => collector.close())
    collector.discover([{ method: 'GET', route: '/listed' }])
    expect(collector.flush()).toBe(true)
    expect(endpointKeys(database)).toEqual(['GET /listed'])
    expect(collector.stats()).toMatchObject({ writerThread: true, errors: 0 })
  })

  it('a thread that stops is reported and replaced; the app answers and nothing after is lost', async () => {
    const database = tempDatabase()
    const sink = errorSink()
    const { collector, send } = await service({ database, onError: sink.onError })
    await send(3)
    expect(collector.flush()).toBe(true)
    const first = writerThreadOf(collector)
    await first.terminate()
    await waitFor(
      'a new writer thread',
      () => collector.threaded && writerThreadOf(collector) !== first,
    )
    expect(sink.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/the writer thread stopped \(exit code 1\); starting a new one/),
    ])
    await send(4)
    expect(collector.flush()).toBe(true)
    expect(countRequests(database)).toBe(7)
    expect(collector.stats()).toMatchObject({ written: 7, pending: 0, dropped: 0 })
  })

  it('past 3 restarts, the app thread writes; rows a stopped thread held are counted as dropped', async () => {
    const database = tempDatabase()
    const sink = errorSink()
    const stops = (): string[] =>
      sink.errors.map((e) => e.message).filter((m) => m.includes('writer thread stopped'))
    const { collector, send } = await service({
      database,
      onError: sink.onError,
      flushInterval: 60_000,
    })
    expect(collector.flush()).toBe(true)
    // Another connection holds the write lock: the thread keeps the rows it cannot write.
    const locker = openDb(database)
    locker.exec('BEGIN IMMEDIATE')
    await send(2)
    expect(collector.flush()).toBe(false)
    expect(collector.stats()).toMatchObject({ pending: 2, dropped: 0 })
    for (let stop = 1; stop <= 4; stop++) {
      await writerThreadOf(collector).terminate()
      await waitFor(`stop ${stop} to be handled`, () => stops().length === stop)
      if (stop === 1) locker.exec('COMMIT')
    }
    expect(stops()[0]).toMatch(/2 request\(s\) it held are lost; starting a new one/)
    expect(stops()[3]).toMatch(/writing on the app's thread from now on/)
    expect(collector.threaded).toBe(false)
    await send(5)
    expect(collector.flush()).toBe(true)
    expect(readRequests(database).map((r) => r.route)).toEqual(Array(5).fill('/things'))
    expect(collector.stats()).toMatchObject({
      written: 5,
      pending: 0,
      dropped: 2,
      writerThread: false,
    })
  })

  it('thread: false writes on the app thread, the same rows', async () => {
    const database = tempDatabase()
    const { collector, send } = await service({ database, version: 'inline' }, false)
    await send(3)
    expect(collector.flush()).toBe(true)
    expect(readRequests(database)).toMatchObject(
      Array(3).fill({ method: 'GET', route: '/things', status: 200, version: 'inline' }),
    )
    expect(collector.stats()).toMatchObject({ written: 3, writerThread: false })
  })
})

describe('refreshLevels()', () => {
  it.each([
    ['the writer thread', true],
    ["the app's thread", false],
  ])(
    'applies a level set by another connection to the next request (%s)',
    async (_name, thread) => {
      const database = tempDatabase()
      // No poll during the test: only refreshLevels() can bring the change.
      const { collector, send } = await service({ database, levelPollInterval: 600_000 }, thread)
      await send(1)
      expect(collector.flush()).toBe(true)
      openDb(database).prepare('UPDATE endpoint SET monitor_level = 0').run()
      await send(1)
      expect(collector.flush()).toBe(true)
      expect(countRequests(database)).toBe(2) // the collector does not know yet
      collector.refreshLevels()
      await send(2)
      expect(collector.flush()).toBe(true)
      expect(countRequests(database)).toBe(2)
    },
  )
})

describe('the columnar batch', () => {
  it('grows past its first capacity and gives back every row, names by value', () => {
    const batch = new RowBatch()
    const rows = 1000
    for (let i = 0; i < rows; i++) {
      batch.push(
        i % 3,
        1_700_000_000_000 + i,
        1000 * i + 0.5 * (i % 2),
        i % 7 === 0 ? 0 : 200 + (i % 300),
        i % 4 === 0 ? null : `user-${i % 5}`,
        i % 6 === 0 ? null : `10.0.0.${i % 9}`,
        i % 11 === 0 ? 1 : 0,
      )
    }
    expect(batch.count).toBe(rows)
    const taken = batch.take()
    expect(batch.count).toBe(0)
    // Distinct names travel once per batch.
    expect([...taken.groups].sort()).toEqual(['user-0', 'user-1', 'user-2', 'user-3', 'user-4'])
    expect(taken.ips).toHaveLength(9)

    const slots: EndpointState[] = [0, 1, 2].map((i) => ({
      id: i === 1 ? 7 : undefined,
      method: 'GET',
      route: `/r${i}`,
      level: i === 1 ? 0 : 1,
      pendingLastRequested: 0,
    }))
    const full: Batch = {
      ...taken,
      firstSlot: 0,
      endpoints: [],
      touched: new Float64Array(0),
      discovered: new Int32Array(0),
      outliers: [],
      profiles: [],
    }
    const held = new HeldRequests()
    // Rows of an endpoint the file has at level 0 are left out.
    const skipped = decodeRows(full, slots, (e) => e.id === undefined || e.level !== 0, held)
    const kept = Array.from({ length: rows }, (_, i) => i).filter((i) => i % 3 !== 1)
    expect(skipped).toBe(rows - kept.length)
    expect(held.count).toBe(kept.length)
    expect(Array.from({ length: held.count }, (_, i) => held.request(i))).toEqual(
      kept.map((i) => ({
        endpoint: slots[i % 3],
        time: 1_700_000_000_000 + i,
        durationUs: 1000 * i + 0.5 * (i % 2),
        status: i % 7 === 0 ? 0 : 200 + (i % 300),
        group: i % 4 === 0 ? null : `user-${i % 5}`,
        ip: i % 6 === 0 ? null : `10.0.0.${i % 9}`,
        aborted: i % 11 === 0 ? 1 : 0,
      })),
    )
    // A second batch appends (past the held columns' first capacity) and shares their names.
    const decodedOnce = Array.from({ length: held.count }, (_, i) => held.request(i))
    decodeRows(full, slots, (e) => e.id === undefined || e.level !== 0, held)
    expect(held.count).toBe(2 * kept.length)
    // Only the names of rows kept (3 of the batch's 9 IPs are on left-out rows only).
    const namesOf = (name: (i: number) => string | null): string[] =>
      [...new Set(kept.map(name))].filter((x) => x !== null).sort()
    expect([...held.groups].sort()).toEqual(namesOf((i) => (i % 4 === 0 ? null : `user-${i % 5}`)))
    expect([...held.ips].sort()).toEqual(namesOf((i) => (i % 6 === 0 ? null : `10.0.0.${i % 9}`)))
    expect(held.ips).toHaveLength(6)
    expect(Array.from({ length: held.count }, (_, i) => held.request(i))).toEqual([
      ...decodedOnce,
      ...decodedOnce,
    ])
    // The names of rows left out are not held (the file would get them for nothing).
    const small = new RowBatch()
    small.push(1, 1_700_000_000_000, 10, 200, 'only-left-out', '10.9.9.9', 0)
    small.push(0, 1_700_000_000_001, 10, 200, null, '10.0.0.1', 0)
    const heldSmall = new HeldRequests()
    const smallBatch: Batch = { ...full, ...small.take() }
    expect(decodeRows(smallBatch, slots, (e) => e.level !== 0, heldSmall)).toBe(1)
    expect(heldSmall.groups).toEqual([])
    expect(heldSmall.ips).toEqual(['10.0.0.1'])
    expect(heldSmall.request(0)).toMatchObject({
      group: null,
      ip: '10.0.0.1',
      time: 1_700_000_000_001,
    })
  })
})

describe('the batch writer after a fault', () => {
  /** A batch of `rows` requests of one endpoint, new to the writer. */
  function batchOf(rows: number): Batch {
    const batch = new RowBatch()
    for (let i = 0; i < rows; i++) batch.push(0, Date.now(), 1000 + i, 200, null, null, 0)
    return {
      ...batch.take(),
      firstSlot: 0,
      endpoints: [{ method: 'GET', route: '/after-fault', level: 1 }],
      touched: new Float64Array(0),
      discovered: new Int32Array(0),
      outliers: [],
      profiles: [],
    }
  }

  function writerOf(database: string, backOff: boolean) {
    const errors: Array<{ kind: string; error: unknown }> = []
    const writer = new BatchWriter(
      { database, version: { name: 'v1', source: 'option' }, node: 'test' },
      {
        error: (error, kind) => errors.push({ kind, error }),
        levels: () => undefined,
        settled: () => undefined,
      },
      { backOff },
    )
    return { writer, errors }
  }

  it.each([
    ['the writer thread', false, true],
    ["the app's thread", true, false],
  ])(
    '%s writes again at its next attempt once a lock is gone, and a short lock is not reported',
    (_where, backOff, writesAtOnce) => {
      const database = tempDatabase()
      const { writer, errors } = writerOf(database, backOff)
      expect(writer.openStore()).toBeDefined()
      const locker = openDb(database)
      locker.exec('BEGIN IMMEDIATE')
      writer.receive(batchOf(3))
      expect(writer.write()).toBe(false)
      expect(writer.write()).toBe(false)
      locker.exec('COMMIT')
      locker.close()
      // No wait for a backoff on the writer thread: the next flush writes.
      expect(writer.write()).toBe(writesAtOnce)
      expect(errors).toEqual([])
      writer.close()
    },
  )

  it('a lock that outlasts LOCK_REPORT_AFTER_MS is reported once', () => {
    const database = tempDatabase()
    const { writer, errors } = writerOf(database, false)
    expect(writer.openStore()).toBeDefined()
    const locker = openDb(database)
    locker.exec('BEGIN IMMEDIATE')
    writer.receive(batchOf(2))
    const start = Date.now()
    const clock = vi.spyOn(Date, 'now')
    try {
      clock.mockReturnValue(start)
      expect(writer.write()).toBe(false)
      clock.mockReturnValue(start + LOCK_REPORT_AFTER_MS - 1)
      expect(writer.write()).toBe(false)
      expect(errors).toEqual([])
      clock.mockReturnValue(start + LOCK_REPORT_AFTER_MS)
      expect(writer.write()).toBe(false)
      clock.mockReturnValue(start + LOCK_REPORT_AFTER_MS + 1000)
      expect(writer.write()).toBe(false)
      expect(errors.map((e) => [e.kind, (e.error as { code?: string }).code])).toEqual([
        ['write', 'SQLITE_BUSY'],
      ])
    } finally {
      clock.mockRestore()
      locker.exec('COMMIT')
      locker.close()
    }
    expect(writer.write()).toBe(true)
    expect(countRequests(database)).toBe(2)
    writer.close()
  })
})

describe("the collector's threads", () => {
  it('a thread whose entry cannot load says why, sets the words it was given and wakes whoever waits', async () => {
    const control = new Int32Array(new SharedArrayBuffer(8))
    const worker = startThread(
      'threads/no-such-entry',
      { anything: 1 },
      {
        onLoadFailure: { control: control.buffer as SharedArrayBuffer, set: [[1, 7]], notify: 1 },
      },
    )
    expect(worker).toBeDefined()
    const message = await new Promise<unknown>((resolve) => worker!.once('message', resolve))
    expect(message).toMatchObject({
      type: 'load-failed',
      error: { message: expect.stringMatching(/no-such-entry/) },
    })
    await new Promise((resolve) => worker!.once('exit', resolve))
    expect(Atomics.load(control, 1)).toBe(7)
  })

  it('errors keep their class, code and fields across threads', () => {
    const error = Object.assign(new SchemaTooNewError(9), { code: 'X_CODE' })
    const again = deserializeError(structuredClone(serializeError(error)))
    expect(again).toBeInstanceOf(SchemaTooNewError)
    expect(again).toMatchObject({ code: 'X_CODE', fileVersion: 9, message: error.message })
  })
})
