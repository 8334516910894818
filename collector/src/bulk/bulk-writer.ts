/*
 * Writes requests whose rollups were counted elsewhere (a RollupCounter) into
 * a metrics file, from a thread of its own: a program that makes millions of
 * requests (the traffic generator) makes and counts the next batch while
 * SQLite inserts this one. Batches are handed over without copying; write()
 * blocks while eight of them wait, and throws the thread's first error.
 */
import {
  MessageChannel,
  receiveMessageOnPort,
  type MessagePort,
  type Worker,
} from 'node:worker_threads'
import { rmSync } from 'node:fs'
import type Database from 'better-sqlite3'
import { RequestInsert, type RequestColumns } from '../store/request-insert.js'
import {
  CLIENT_ROLLUP_TABLES,
  withoutClientRollupRows,
  writeClientRollupRows,
  writeCountedRollups,
  type CountedRollups,
} from '../store/rollups/index.js'
import { openForWriting } from '../store/metrics-store.js'
import { deserializeError, type SerializedError } from '../threads/errors.js'
import { startThread } from '../threads/start.js'

/** One transaction's worth: requests with the ids they get, their rollups, and endpoints touched. */
export interface BulkBatch {
  rows: RequestColumns
  /** 1 where the client left before the response (request.aborted), per row */
  aborted: Uint8Array
  /** the rows' rollups: counted.afterId + 1 is the first row's id */
  counted: CountedRollups
  /** (endpoint id, time of its latest request) pairs, for endpoint.last_requested */
  touched: Float64Array
}

export interface BulkOptions {
  /** path of a better_sqlite3.node built for another ABI */
  nativeBinding?: string
  /**
   * false: commits do not wait for the disk (synchronous = OFF; the file
   * stays in WAL mode): for a new file that is removed if writing fails, as
   * the traffic generator's is, since an operating system crash or a power
   * cut may lose or damage what was written.
   */
  durable?: boolean
  /**
   * true: the per-user and per-IP rollup rows are written apart, by the
   * caller's thread into a file of their own (`path` + '.clients'), and
   * moved into the file when the writer closes (see ClientRollupFile).
   * Until then the file's rollup_user_day and rollup_ip_day lack them: for a
   * new file that nobody reads before it is complete, as the generator's;
   * those two tables must be empty at the start. Ignored without a thread.
   */
  clientsApart?: boolean
}

/** Inserts bulk batches on the thread it runs on (the writer thread's, or the caller's). */
export class BulkInserter {
  private readonly db: Database.Database
  private readonly insert: RequestInsert
  private readonly touch: Database.Statement
  private readonly transaction: (batch: BulkBatch) => void

  constructor(path: string, options: BulkOptions = {}) {
    this.db = openForWriting(path, Date.now(), options.nativeBinding)
    const db = this.db
    if (options.durable === false) db.pragma('synchronous = OFF')
    // Each row's own version and node; the insert checks SQLite gives the ids the rollups counted.
    this.insert = new RequestInsert(db)
    this.touch = db.prepare(
      'UPDATE endpoint SET last_requested = max(coalesce(last_requested, 0), ?) WHERE id = ?',
    )
    this.transaction = db.transaction((batch: BulkBatch) => {
      const { rows, aborted, counted, touched } = batch
      if (
        rows.count !== counted.through - counted.afterId ||
        (rows.count > 0 &&
          (rows.id[0] !== counted.afterId + 1 || rows.id[rows.count - 1] !== counted.through))
      ) {
        throw new RangeError(
          `routemeter: ${rows.count} rows are not requests ${counted.afterId + 1}..${counted.through} of their rollups`,
        )
      }
      // First: it refuses rollups that do not follow the file's before anything is inserted.
      writeCountedRollups(db, counted)
      this.insert.run(rows, aborted)
      for (let i = 0; i + 1 < touched.length; i += 2) this.touch.run(touched[i + 1], touched[i])
    }).immediate
  }

  /** Writes one batch in one IMMEDIATE transaction; nothing of it if it throws. */
  write(batch: BulkBatch): void {
    this.transaction(batch)
  }

  close(): void {
    if (this.db.open) this.db.close()
  }
}

/**
 * The per-user and per-IP rollup rows of a bulk write, kept in a file of
 * their own by the caller's thread while the writer thread, the generator's
 * bottleneck, inserts the rest; moved in at the end with one INSERT ... SELECT
 * a table. Why and by how much: docs/benchmarks.md.
 */
class ClientRollupFile {
  readonly path: string
  private db: Database.Database | undefined

  constructor(
    private readonly target: string,
    private readonly options: BulkOptions,
  ) {
    this.path = `${target}.clients`
  }

  add(counted: CountedRollups): void {
    if (this.db === undefined) {
      this.remove() // a crashed run's
      this.db = openForWriting(this.path, Date.now(), this.options.nativeBinding)
      this.db.pragma('synchronous = OFF') // removed whatever happens
    }
    const db = this.db
    db.transaction(() => writeClientRollupRows(db, counted))()
  }

  /** Moves the rows into the target file, which its writer has closed. */
  moveInto(): void {
    if (this.db === undefined) return
    this.db.close()
    this.db = undefined
    const db = openForWriting(this.target, Date.now(), this.options.nativeBinding)
    try {
      if (this.options.durable === false) db.pragma('synchronous = OFF')
      db.prepare('ATTACH ? AS clients').run(this.path)
      db.transaction(() => {
        for (const table of CLIENT_ROLLUP_TABLES) {
          if (db.prepare(`SELECT 1 FROM main.${table} LIMIT 1`).get() !== undefined) {
            throw new Error(
              `routemeter: ${table} has rows already: the rows written apart would collide with them`,
            )
          }
          db.exec(`INSERT INTO main.${table} SELECT * FROM clients.${table}`)
        }
      })()
      db.exec('DETACH clients')
    } finally {
      db.close()
    }
  }

  remove(): void {
    if (this.db?.open) this.db.close()
    this.db = undefined
    for (const suffix of ['', '-wal', '-shm']) rmSync(this.path + suffix, { force: true })
  }
}

/** The words of the block shared with the thread. */
export const OUTSTANDING = 0 // batches (and the close) posted, not finished
export const FAILED = 1 // 1 once a batch failed: its error waits on the error port
export const STOPPED = 2 // 1 once the thread ended
const CONTROL_WORDS = 3

/**
 * Batches posted and not written yet before write() waits: enough to absorb
 * the spikes of the caller's work (the generator's per-client rollups), about
 * 1 MiB a batch of 20,000 requests.
 */
const MAX_OUTSTANDING = 8
/** Longest wait for one batch (a lock held by another process counts). */
const WAIT_TIMEOUT_MS = 120_000

export interface BulkWorkerData {
  path: string
  options: BulkOptions
  control: SharedArrayBuffer
  errors: MessagePort
}

/** The messages the thread takes. */
export type BulkCommand = { type: 'batch'; batch: BulkBatch } | { type: 'close' }

/** An error as it crosses back from the thread (a write's, or its entry's that could not load). */
export interface BulkError {
  type: 'error' | 'load-failed'
  error: SerializedError
}

/**
 * Writes batches from a thread of its own, or on the caller's thread where
 * none can start (`thread: false`, or TypeScript sources without a loader).
 */
export class BulkWriter {
  private readonly inline: BulkInserter | undefined
  private readonly worker: Worker | undefined
  private readonly errors: MessagePort | undefined
  private readonly clients: ClientRollupFile | undefined
  private readonly control = new Int32Array(new SharedArrayBuffer(4 * CONTROL_WORDS))
  private closed = false

  /**
   * `path`: a metrics file of the current schema, its endpoints, versions and
   * names in it. A thread opens it at the first write() (or close()): the
   * caller may prepare it while the thread starts. Without one, it is opened now.
   */
  constructor(path: string, options: BulkOptions & { thread?: boolean } = {}) {
    const { port1, port2 } = new MessageChannel()
    const control = this.control.buffer as SharedArrayBuffer
    const data: BulkWorkerData = {
      path,
      options: { nativeBinding: options.nativeBinding, durable: options.durable },
      control,
      errors: port2,
    }
    const worker =
      options.thread === false
        ? undefined
        : startThread('bulk/thread-entry', data, {
            transferList: [port2],
            onLoadFailure: {
              port: port2,
              control,
              set: [
                [FAILED, 1],
                [STOPPED, 1],
              ],
              notify: OUTSTANDING,
            },
          })
    if (worker === undefined) {
      port1.close()
      this.inline = new BulkInserter(path, options)
      return
    }
    this.worker = worker
    this.errors = port1
    if (options.clientsApart === true) this.clients = new ClientRollupFile(path, options)
    this.worker.unref()
    this.errors.unref()
  }

  /** Whether batches are written by a thread of their own. */
  get threaded(): boolean {
    return this.worker !== undefined
  }

  /**
   * Hands a batch over (its arrays are the writer's from now on); throws the
   * first error of any batch written so far.
   */
  write(batch: BulkBatch): void {
    if (this.closed) throw new Error('routemeter: the bulk writer is closed')
    if (this.inline !== undefined) {
      this.inline.write(batch)
      return
    }
    this.throwIfFailed()
    let { counted } = batch
    if (this.clients !== undefined && counted.clients !== undefined) {
      try {
        this.clients.add(counted)
      } catch (error) {
        this.clients.remove()
        throw error
      }
      // The thread still moves the users' watermark: the rows follow at close().
      counted = withoutClientRollupRows(counted)
    }
    // A class instance crosses as its own fields: send them as a plain object, its columns moved.
    const plain: RequestColumns = { ...batch.rows }
    const buffers = new Set<ArrayBuffer>(
      [...Object.values(plain), batch.aborted, batch.touched].flatMap((column) =>
        typeof column === 'number' ? [] : [column.buffer as ArrayBuffer],
      ),
    )
    Atomics.add(this.control, OUTSTANDING, 1)
    const command: BulkCommand = { type: 'batch', batch: { ...batch, rows: plain, counted } }
    this.worker!.postMessage(command, [...buffers])
    this.waitUntil(MAX_OUTSTANDING - 1)
  }

  /** Waits for every batch to be written and closes the file; throws the first error. */
  close(): void {
    if (this.closed) return
    this.closed = true
    if (this.inline !== undefined) {
      this.inline.close()
      return
    }
    try {
      if (Atomics.load(this.control, STOPPED) === 0) {
        Atomics.add(this.control, OUTSTANDING, 1)
        this.worker!.postMessage({ type: 'close' } satisfies BulkCommand)
        this.waitUntil(0)
      }
      this.throwIfFailed()
      this.errors!.close()
      this.clients?.moveInto()
    } finally {
      this.clients?.remove()
    }
  }

  /** Blocks until at most `outstanding` batches wait. */
  private waitUntil(outstanding: number): void {
    const started = Date.now()
    for (;;) {
      const waiting = Atomics.load(this.control, OUTSTANDING)
      if (waiting <= outstanding) return
      this.throwIfFailed()
      if (Atomics.load(this.control, STOPPED) === 1) {
        throw new Error('routemeter: the bulk writer thread stopped before writing every batch')
      }
      if (Date.now() - started > WAIT_TIMEOUT_MS) {
        throw new Error(`routemeter: a batch took more than ${WAIT_TIMEOUT_MS / 1000} s to write`)
      }
      Atomics.wait(this.control, OUTSTANDING, waiting, 100)
    }
  }

  private throwIfFailed(): void {
    if (Atomics.load(this.control, FAILED) === 0) return
    const message = receiveMessageOnPort(this.errors!)?.message as BulkError | undefined
    this.closed = true
    void this.worker!.terminate()
    throw message === undefined
      ? new Error('routemeter: the bulk writer failed')
      : deserializeError(message.error)
  }
}
