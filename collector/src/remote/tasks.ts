/*
 * The remote API's work on the metrics file: copies for snapshots (online
 * backup or delta), the figures of GET /info, and a level change. Each runs
 * in a thread of its own (thread.ts), so that neither SQLite's work nor its
 * waits (a lock, an fsync, a count over millions of rows) hold up the app's
 * requests; and on the app's thread, in smaller steps, where no thread can
 * start.
 */
import Database from 'better-sqlite3'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { ROLLUP_WATERMARK_KEY } from '../store/rollups/index.js'
import type { MonitorLevel } from '../schema/types.js'

export type Task =
  | { kind: 'snapshot'; database: string; dir: string; since: number | undefined }
  | { kind: 'info'; database: string }
  | { kind: 'level'; database: string; method: string; route: string; level: MonitorLevel }

/** What a snapshot task leaves in its folder: the copy, not yet compressed. */
export interface CopyFacts {
  /** the copy: a complete SQLite file */
  path: string
  schemaVersion: number
  /** highest request id of the server's file when the copy was taken (0: no request) */
  lastRequestId: number
}

/** What GET {prefix}/info tells of the file (the collector adds node and app version). */
export interface FileFacts {
  schemaVersion: number
  fileBytes: number
  requests: number
  endpoints: number
  firstRequest: number | null
  lastRequest: number | null
  lastRequestId: number
}

/** A reason worth telling the client (the file is missing, cannot be read, no such endpoint). */
export class RemoteTaskError extends Error {
  override readonly name = 'RemoteTaskError'
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message)
  }
}

/** How big the steps are between which other work (the app's requests, an abort) gets a turn. */
interface Steps {
  backupPages: number
  deltaRows: number
}

/** In a thread of its own: 4 MiB of pages, so that a client that leaves stops the copy soon. */
export const THREAD_STEPS: Steps = { backupPages: 1024, deltaRows: 20_000 }
/** On the app's thread: about a millisecond of work per step. */
export const INLINE_STEPS: Steps = { backupPages: 256, deltaRows: 2000 }

/** Page cache of the connection a snapshot reads: each page is read once, in order. */
const SOURCE_CACHE_KIB = 2048
/** How long a level change waits for the collector's write lock. */
const LEVEL_BUSY_TIMEOUT_MS = 2000

/**
 * Rollup tables are derived from requests: a delta leaves them empty (and
 * drops the meta keys about them) and the desktop app recomputes them. Any
 * table whose name says "rollup" is one.
 */
export const isDerivedTable = (name: string): boolean => /rollup/i.test(name)

const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`

export async function runTask(task: Task, signal: AbortSignal, steps: Steps): Promise<unknown> {
  switch (task.kind) {
    case 'snapshot':
      return snapshot(task.database, task.dir, task.since, signal, steps)
    case 'info':
      return fileFacts(task.database)
    case 'level':
      return setLevel(task.database, task.method, task.route, task.level)
  }
}

function openSource(database: string, readonly = true): Database.Database {
  if (!existsSync(database)) {
    throw new RemoteTaskError(`the metrics file ${database} does not exist (yet)`, 503)
  }
  try {
    return new Database(database, {
      readonly,
      fileMustExist: true,
      timeout: readonly ? 1000 : LEVEL_BUSY_TIMEOUT_MS,
    })
  } catch (error) {
    throw new RemoteTaskError(`the metrics file cannot be opened: ${(error as Error).message}`, 503)
  }
}

/**
 * Copies the file into `dir`: the whole file, or with `since`, every table
 * but the requests in full plus the requests with a higher id. An abort
 * stops the work after the current step.
 */
async function snapshot(
  database: string,
  dir: string,
  since: number | undefined,
  signal: AbortSignal,
  steps: Steps,
): Promise<CopyFacts> {
  const path = join(dir, 'metrics.db')
  const facts =
    since === undefined
      ? await backup(database, path, signal, steps)
      : await copyDelta(database, path, since, signal, steps)
  return { path, ...facts }
}

type Facts = Omit<CopyFacts, 'path'>

function copyFacts(db: Database.Database, schema: string): Facts {
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
 * SQLite's online backup. One read transaction is held on the source for
 * the whole copy: the copy is the file as it was when the transaction began
 * (WAL keeps that view), and the collector's writes in the meantime do not
 * restart the backup, as they would between steps of a backup that takes a
 * new read lock per step.
 */
async function backup(
  database: string,
  copy: string,
  signal: AbortSignal,
  steps: Steps,
): Promise<Facts> {
  const source = openSource(database)
  try {
    source.pragma(`cache_size = -${SOURCE_CACHE_KIB}`)
    source.exec('BEGIN')
    source.prepare('SELECT count(*) FROM sqlite_schema').get() // takes the read snapshot now
    await source.backup(copy, {
      progress: () => {
        signal.throwIfAborted()
        return steps.backupPages
      },
    })
  } finally {
    if (source.inTransaction) source.exec('COMMIT')
    source.close()
  }
  const db = new Database(copy)
  try {
    // The copy is a file of its own: a rollback journal, no -wal beside it.
    db.pragma('journal_mode = DELETE')
    return copyFacts(db, 'main')
  } finally {
    db.close()
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
  steps: Steps,
): Promise<Facts> {
  openSource(database).close() // a missing or unreadable file is told as such, not created
  const db = new Database(copy)
  try {
    db.pragma('synchronous = OFF') // a temporary file: a crash loses nothing of value
    db.prepare('ATTACH DATABASE ? AS src').run(database)
    db.exec('BEGIN')
    const result = copyFacts(db, 'src')
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
        `INSERT INTO main.request SELECT * FROM src.request WHERE id > ? ORDER BY id LIMIT ${steps.deltaRows}`,
      )
      const lastCopied = db.prepare('SELECT max(id) FROM main.request').pluck()
      let after = since
      while (copyStep.run(after).changes === steps.deltaRows) {
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

function fileFacts(database: string): FileFacts {
  const db = openSource(database)
  try {
    return db.transaction(() => {
      const one = (sql: string): number | null => db.prepare(sql).pluck().get() as number | null
      const schemaVersion = db.pragma('user_version', { simple: true }) as number
      return {
        schemaVersion,
        // What a snapshot would hold: the pages of the file, the WAL's included.
        fileBytes:
          (db.pragma('page_count', { simple: true }) as number) *
          (db.pragma('page_size', { simple: true }) as number),
        ...(schemaVersion >= 5
          ? requestFacts(db)
          : {
              requests: one('SELECT count(*) FROM request') ?? 0,
              firstRequest: one('SELECT min(time) FROM request'),
              lastRequest: one('SELECT max(time) FROM request'),
            }),
        endpoints: one('SELECT count(*) FROM endpoint') ?? 0,
        lastRequestId: one('SELECT coalesce(max(id), 0) FROM request') ?? 0,
      }
    })()
  } finally {
    db.close()
  }
}

/**
 * The number of requests and the times of the first and last, from the
 * rollups (schema 5) instead of a scan of every request: the counted ones
 * from rollup_day, their first and last hour from rollup_hour (a step in its
 * key per endpoint) and those hours' requests by the id span it keeps; the
 * requests above the rollups' watermark (none in a collector's file) by id.
 */
function requestFacts(
  db: Database.Database,
): Pick<FileFacts, 'requests' | 'firstRequest' | 'lastRequest'> {
  const watermark = Number(
    db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(ROLLUP_WATERMARK_KEY) ?? 0,
  )
  const counted = db.prepare('SELECT coalesce(sum(requests), 0) FROM rollup_day').pluck().get()
  const newer = db
    .prepare(
      'SELECT count(*) AS n, min(time) AS first, max(time) AS last FROM request WHERE id > ?',
    )
    .get(watermark) as { n: number; first: number | null; last: number | null }
  const hours = db
    .prepare(
      `SELECT min(first) AS first, max(last) AS last FROM (
         SELECT (SELECT min(hour) FROM rollup_hour WHERE endpoint_id = e.id) AS first,
                (SELECT max(hour) FROM rollup_hour WHERE endpoint_id = e.id) AS last
         FROM endpoint e)`,
    )
    .get() as { first: number | null; last: number | null }
  // Every counted request is in that hour or after (before) it: the extreme of the id span is exact.
  const inHour = (hour: number | null, pick: 'min' | 'max'): number | null => {
    if (hour === null) return null
    return db
      .prepare(
        `SELECT ${pick}(time) FROM request WHERE id BETWEEN
           (SELECT min(first_id) FROM rollup_hour WHERE endpoint_id IN (SELECT id FROM endpoint) AND hour = @hour)
           AND (SELECT max(last_id) FROM rollup_hour WHERE endpoint_id IN (SELECT id FROM endpoint) AND hour = @hour)`,
      )
      .pluck()
      .get({ hour }) as number | null
  }
  const either = (a: number | null, b: number | null, pick: (x: number, y: number) => number) =>
    a === null ? b : b === null ? a : pick(a, b)
  return {
    requests: (counted as number) + newer.n,
    firstRequest: either(inHour(hours.first, 'min'), newer.first, Math.min),
    lastRequest: either(inHour(hours.last, 'max'), newer.last, Math.max),
  }
}

/** Writes an endpoint's monitor level with a short-lived read-write connection. */
function setLevel(database: string, method: string, route: string, level: MonitorLevel): void {
  const db = openSource(database, false)
  let changed: number
  try {
    changed = db
      .prepare('UPDATE endpoint SET monitor_level = ? WHERE method = ? AND route = ?')
      .run(level, method, route).changes
  } finally {
    db.close()
  }
  if (changed === 0) throw new RemoteTaskError(`no endpoint ${method} ${route} in the file`, 404)
}
