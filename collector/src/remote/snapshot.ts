import Database from 'better-sqlite3'
import { createReadStream, createWriteStream, existsSync, rmSync } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'
import { createGzip } from 'node:zlib'
import { writerEntry } from '../writer-entry.js'

/** A gzip-compressed copy of the metrics file in a temporary folder, ready to be served. */
export interface Snapshot {
  /** the temporary folder; remove it with removeSnapshot() once served */
  dir: string
  gzipPath: string
  compressedBytes: number
  uncompressedBytes: number
  schemaVersion: number
  /** highest request id of the server's file when the copy was taken (0: no request) */
  lastRequestId: number
  /** for a delta: the copy holds the requests with a higher id only */
  since: number | undefined
}

/**
 * Pages copied per step of the online backup, in its own thread: 4 MiB of
 * 4 KiB pages, so that a client that leaves stops the copy within a step.
 */
const BACKUP_PAGES_PER_STEP = 1024
/** The same, when the backup runs on the app's thread: about a millisecond of work per step. */
const INLINE_PAGES_PER_STEP = 256
/** Page cache of the connection the backup reads: pages are read once, in order. */
const SOURCE_CACHE_KIB = 2048
/** Requests copied per step of a delta, between which the app's requests are served. */
const DELTA_ROWS_PER_STEP = 2000

/**
 * Rollup tables are derived from requests: a delta leaves them empty (and
 * drops the meta keys about them) and the desktop app recomputes them. Any
 * table whose name says "rollup" is one.
 */
export const isDerivedTable = (name: string): boolean => /rollup/i.test(name)

// Temporary folders still in use, removed if the process exits mid-snapshot.
const liveDirs = new Set<string>()
let exitHookInstalled = false

function trackDir(dir: string): void {
  liveDirs.add(dir)
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const live of liveDirs) rmSync(live, { recursive: true, force: true })
  })
}

export async function removeSnapshot(dir: string): Promise<void> {
  liveDirs.delete(dir)
  await rm(dir, { recursive: true, force: true })
}

/** Temporary folders of snapshots being made or served right now (for tests and diagnostics). */
export function liveSnapshotDirs(): string[] {
  return [...liveDirs]
}

const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`

/**
 * Copies the metrics file at `database` into a temporary folder and
 * compresses it: the whole file, or with `since`, every table but the
 * requests in full plus the requests with a higher id. Aborting `signal`
 * stops the work after the current step and removes what was written.
 */
export async function createSnapshot(
  database: string,
  options: { since?: number; signal: AbortSignal },
): Promise<Snapshot> {
  const { since, signal } = options
  if (!existsSync(database))
    throw new SnapshotError(`the metrics file ${database} does not exist yet`)
  const dir = await mkdtemp(join(tmpdir(), 'routemeter-snapshot-'))
  trackDir(dir)
  try {
    const copy = join(dir, 'metrics.db')
    const facts =
      since === undefined
        ? await backupFile(database, copy, signal)
        : await copyDelta(database, copy, since, signal)
    const uncompressedBytes = (await stat(copy)).size
    const gzipPath = `${copy}.gz`
    // zlib compresses on libuv's thread pool: the event loop only moves buffers.
    await pipeline(createReadStream(copy), createGzip(), createWriteStream(gzipPath), { signal })
    await rm(copy)
    const compressedBytes = (await stat(gzipPath)).size
    return { dir, gzipPath, compressedBytes, uncompressedBytes, since, ...facts }
  } catch (error) {
    await removeSnapshot(dir)
    throw error
  }
}

/** The file could not be copied for a reason worth telling the client. */
export class SnapshotError extends Error {
  override readonly name = 'SnapshotError'
}

type Facts = Pick<Snapshot, 'schemaVersion' | 'lastRequestId'>

/*
 * SQLite's online backup. One read transaction is held on the source for the
 * whole copy: the copy is the file as it was when the transaction began (WAL
 * keeps that view), and the collector's writes in the meantime do not restart
 * the backup, as they would between steps of a backup that takes a new read
 * lock per step. It runs in a thread of its own: the backup's last step
 * commits (and fsyncs) the whole copy at once, about 100 ms for 100 MB, which
 * the app's event loop must not wait for.
 *
 * The thread's code is a plain CommonJS script (the same from the TypeScript
 * sources, the ESM and the CommonJS build); it loads the collector's own
 * better-sqlite3, resolved from a module of this package.
 */
const BACKUP_THREAD = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require('node:module').createRequire(workerData.from)('better-sqlite3')
let aborted = false
parentPort.on('message', () => (aborted = true))
;(async () => {
  const source = new Database(workerData.database, { readonly: true, fileMustExist: true, timeout: 1000 })
  try {
    source.pragma('cache_size = -' + workerData.cacheKiB)
    source.exec('BEGIN')
    source.prepare('SELECT count(*) FROM sqlite_schema').get()
    await source.backup(workerData.copy, {
      progress: () => {
        if (aborted) throw Object.assign(new Error('the snapshot was aborted'), { name: 'AbortError' })
        return workerData.pagesPerStep
      },
    })
  } finally {
    if (source.inTransaction) source.exec('COMMIT')
    source.close()
  }
  const copy = new Database(workerData.copy)
  try {
    copy.pragma('journal_mode = DELETE')
  } finally {
    copy.close()
  }
})().then(
  () => parentPort.postMessage({ ok: true }),
  (error) => parentPort.postMessage({ ok: false, name: error.name, message: error.message, code: error.code }),
)`

/** A file of this package, from which the thread resolves better-sqlite3; undefined if unknown. */
function packageModule(): string | undefined {
  try {
    return writerEntry().entry
  } catch {
    return undefined // TypeScript sources without a loader: the backup runs on this thread
  }
}

async function backupFile(database: string, copy: string, signal: AbortSignal): Promise<Facts> {
  const from = packageModule()
  if (from === undefined) await backupInline(database, copy, signal)
  else await backupInThread(from, database, copy, signal)
  const db = new Database(copy, { readonly: true, fileMustExist: true })
  try {
    return facts(db, 'main')
  } finally {
    db.close()
  }
}

function backupInThread(
  from: string,
  database: string,
  copy: string,
  signal: AbortSignal,
): Promise<void> {
  signal.throwIfAborted()
  return new Promise((resolve, reject) => {
    const worker = new Worker(BACKUP_THREAD, {
      eval: true,
      workerData: {
        from,
        database,
        copy,
        pagesPerStep: BACKUP_PAGES_PER_STEP,
        cacheKiB: SOURCE_CACHE_KIB,
      },
      // The app's own flags and loaders are not the backup's business.
      execArgv: [],
      env: {},
    })
    worker.unref() // a snapshot under way does not keep the process alive
    const abort = (): void => worker.postMessage('abort')
    signal.addEventListener('abort', abort, { once: true })
    let settled = false
    const settle = (error?: Error): void => {
      if (settled) return
      settled = true
      signal.removeEventListener('abort', abort)
      if (error === undefined) resolve()
      else reject(error)
    }
    worker.once(
      'message',
      (result: { ok: boolean; name?: string; message?: string; code?: string }) => {
        settle(
          result.ok
            ? undefined
            : Object.assign(new Error(result.message), { name: result.name, code: result.code }),
        )
      },
    )
    worker.once('error', (error) => settle(error))
    worker.once('exit', (code) =>
      settle(new Error(`the backup thread stopped (exit code ${code})`)),
    )
  })
}

/** The same backup on the app's thread, in smaller steps. */
async function backupInline(database: string, copy: string, signal: AbortSignal): Promise<void> {
  const source = new Database(database, { readonly: true, fileMustExist: true, timeout: 1000 })
  try {
    source.pragma(`cache_size = -${SOURCE_CACHE_KIB}`)
    source.exec('BEGIN')
    source.prepare('SELECT count(*) FROM sqlite_schema').get() // takes the read snapshot now
    await source.backup(copy, {
      progress: () => {
        signal.throwIfAborted()
        return INLINE_PAGES_PER_STEP
      },
    })
  } finally {
    if (source.inTransaction) source.exec('COMMIT')
    source.close()
  }
  const db = new Database(copy)
  try {
    db.pragma('journal_mode = DELETE') // a file of its own: no -wal beside it
  } finally {
    db.close()
  }
}

function facts(db: Database.Database, schema: string): Facts {
  const hasRequests = db
    .prepare(`SELECT 1 FROM ${schema}.sqlite_schema WHERE type = 'table' AND name = 'request'`)
    .get()
  return {
    schemaVersion: db.pragma(`${schema}.user_version`, { simple: true }) as number,
    lastRequestId: hasRequests
      ? (db.prepare(`SELECT coalesce(max(id), 0) FROM ${schema}.request`).pluck().get() as number)
      : 0,
  }
}

/**
 * A small file of the same schema: every table in full except the requests
 * (only id > since) and derived rollups (empty). The new file is the
 * connection's main database and the metrics file is attached and only read,
 * inside one transaction: every table is read as of the same moment.
 */
async function copyDelta(
  database: string,
  copy: string,
  since: number,
  signal: AbortSignal,
): Promise<Facts> {
  const db = new Database(copy)
  try {
    db.pragma('synchronous = OFF') // a temporary file: a crash loses nothing of value
    db.prepare('ATTACH DATABASE ? AS src').run(database)
    db.exec('BEGIN')
    const result = facts(db, 'src')
    db.pragma(`application_id = ${db.pragma('src.application_id', { simple: true }) as number}`)
    db.pragma(`user_version = ${result.schemaVersion}`)
    const objects = db
      .prepare(
        `SELECT type, name, sql FROM src.sqlite_schema
         WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid`,
      )
      .all() as Array<{ type: string; name: string; sql: string }>
    // Tables and their indexes before the rows: the request copy then updates
    // the indexes step by step instead of in one long CREATE INDEX at the end.
    for (const { sql } of objects.filter((o) => o.type === 'table' || o.type === 'index')) {
      db.exec(sql)
    }
    for (const { name } of objects.filter((o) => o.type === 'table')) {
      if (name === 'request' || isDerivedTable(name)) continue
      // meta keys about the rollups (their watermark) describe tables the delta leaves empty
      const where = name === 'meta' ? " WHERE key NOT LIKE '%rollup%'" : ''
      db.exec(`INSERT INTO main.${quote(name)} SELECT * FROM src.${quote(name)}${where}`)
    }
    if (objects.some((o) => o.type === 'table' && o.name === 'request')) {
      const copyStep = db.prepare(
        `INSERT INTO main.request SELECT * FROM src.request WHERE id > ? ORDER BY id LIMIT ${DELTA_ROWS_PER_STEP}`,
      )
      const lastCopied = db.prepare('SELECT max(id) FROM main.request').pluck()
      let after = since
      while (copyStep.run(after).changes === DELTA_ROWS_PER_STEP) {
        after = lastCopied.get() as number
        await nextTurn()
        signal.throwIfAborted()
      }
    }
    for (const { sql } of objects.filter((o) => o.type === 'view' || o.type === 'trigger')) {
      db.exec(sql)
    }
    db.exec('COMMIT')
    return result
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK')
    db.close()
  }
}
