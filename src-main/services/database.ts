/**
 * One file on purpose: every connection the desktop side makes to a metrics file is opened here.
 *
 * The desktop side's only door to SQLite: every connection to a metrics file
 * is opened here. Queries use a read-only connection; the one write the
 * desktop app makes (an endpoint's monitor level) goes through a short-lived
 * read-write connection. Nothing here migrates or otherwise changes a file.
 */
import Database from 'better-sqlite3'
import { closeSync, openSync, readSync, statSync, type Stats } from 'node:fs'
import { resolve } from 'node:path'
import {
  checkSchema,
  NotRoutemeterFileError,
  SchemaTooNewError,
  POLICY_KEY,
  type EndpointRow,
  type MonitorLevel,
  type RetentionPolicy,
} from 'routemeter/schema'
import {
  ipRollupTableSql,
  rollUpAfter,
  rollupTablesSql,
  userRollupWatermark,
} from 'routemeter/writer'
import type { Endpoint, RetentionSettings } from '../api/contract.js'
import { badArgument, DashboardError, isCorruption } from '../api/errors.js'

let nativeBinding: string | undefined

/**
 * Sets, once at startup, the better_sqlite3.node to load: the Electron main
 * process needs a build for Electron's ABI; plain Node (tests, web mode)
 * leaves it unset and gets the default build.
 */
export function setNativeBinding(path: string | undefined): void {
  nativeBinding = path
}

export function getNativeBinding(): string | undefined {
  return nativeBinding
}

function connect(path: string, options: Database.Options): Database.Database {
  return new Database(path, {
    ...options,
    ...(nativeBinding === undefined ? {} : { nativeBinding }),
  })
}

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1')
const HEADER_BYTES = 100

/**
 * Identity of a file on disk: a new inode at the same path is another file.
 * The birth time tells apart a new file that got a deleted one's inode number.
 */
export interface FileIdentity {
  dev: number
  ino: number
  birthtimeMs: number
}

function identityOf(stats: Stats): FileIdentity {
  return { dev: stats.dev, ino: stats.ino, birthtimeMs: stats.birthtimeMs }
}

function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.birthtimeMs === b.birthtimeMs
}

function statOrThrow(path: string): Stats {
  try {
    return statSync(path)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new DashboardError(
        'FILE_MISSING',
        `The metrics file ${path} does not exist (was it moved or deleted?).`,
      )
    }
    throw new DashboardError(
      'INTERNAL',
      `The metrics file ${path} cannot be read: ${(error as Error).message}`,
    )
  }
}

function readHeader(path: string): Buffer {
  const header = Buffer.alloc(HEADER_BYTES)
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (error) {
    throw new DashboardError(
      'INTERNAL',
      `The metrics file ${path} cannot be read: ${(error as Error).message}`,
    )
  }
  try {
    const read = readSync(fd, header, 0, HEADER_BYTES, 0)
    return header.subarray(0, read)
  } finally {
    closeSync(fd)
  }
}

function hasWal(path: string): boolean {
  try {
    return statSync(`${path}-wal`).size > 0
  } catch {
    return false
  }
}

function looksLikeText(bytes: Buffer): boolean {
  if (bytes.length === 0) return false
  for (const byte of bytes) {
    if (byte === 0 || (byte < 32 && byte !== 9 && byte !== 10 && byte !== 13)) return false
  }
  return true
}

/**
 * Checks what can be checked without SQLite: the file exists, is not empty,
 * starts like an SQLite database and is not shorter than its header says.
 */
export function inspectFile(path: string): Stats {
  const stats = statOrThrow(path)
  if (stats.isDirectory()) {
    throw new DashboardError(
      'NOT_SQLITE',
      `${path} is a folder, not a Routemeter metrics file: choose the .db file inside it.`,
    )
  }
  if (stats.size === 0) {
    throw new DashboardError(
      'FILE_EMPTY',
      `The metrics file ${path} is empty (0 bytes): no collector has written to it yet.`,
    )
  }
  const header = readHeader(path)
  const magicPart = SQLITE_MAGIC.subarray(0, Math.min(header.length, SQLITE_MAGIC.length))
  if (!header.subarray(0, magicPart.length).equals(magicPart)) {
    const what = looksLikeText(header) ? 'a text file' : 'not an SQLite database'
    throw new DashboardError(
      'NOT_SQLITE',
      `${path} is ${what}, so it is not a Routemeter metrics file (those are SQLite databases).`,
    )
  }
  if (header.length < HEADER_BYTES) {
    throw new DashboardError(
      'CORRUPT',
      `The metrics file ${path} is damaged: it is cut short after ${stats.size} bytes.`,
    )
  }
  const rawPageSize = header.readUInt16BE(16)
  const pageSize = rawPageSize === 1 ? 65_536 : rawPageSize
  // The page count in the header is valid only when its "valid-for" counter matches, and
  // only without a -wal: a checkpoint writes page 1 before the pages that grow the file.
  const headerPages =
    header.readUInt32BE(24) === header.readUInt32BE(92) && !hasWal(path)
      ? header.readUInt32BE(28)
      : 0
  if (
    pageSize < 512 ||
    (pageSize & (pageSize - 1)) !== 0 ||
    stats.size % pageSize !== 0 ||
    stats.size < headerPages * pageSize
  ) {
    const expected = headerPages * pageSize
    throw new DashboardError(
      'CORRUPT',
      `The metrics file ${path} is damaged (truncated or overwritten): it has ${stats.size} bytes` +
        (expected > stats.size ? ` where its header announces ${expected}.` : '.'),
    )
  }
  return stats
}

/** Turns the schema check's errors into the API's. */
function checkRoutemeterSchema(db: Database.Database, path: string): number {
  let version: number
  try {
    const tables = db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get() as number
    const applicationId = db.pragma('application_id', { simple: true }) as number
    // No table and no owner: a new file whose collector has not created its tables yet.
    if (tables === 0 && applicationId === 0) version = 0
    else version = checkSchema(db)
  } catch (error) {
    if (error instanceof NotRoutemeterFileError) {
      const id = `0x${error.applicationId.toString(16).padStart(8, '0')}`
      throw new DashboardError(
        'OTHER_APP',
        `${path} is an SQLite database of another application (application_id ${id}), ` +
          'not a Routemeter metrics file.',
      )
    }
    if (error instanceof SchemaTooNewError) {
      throw new DashboardError(
        'TOO_NEW',
        `${path} was written by a newer Routemeter (file schema version ${error.fileVersion}; ` +
          `this app reads up to version ${error.knownVersion}). Update Routemeter to open it.`,
      )
    }
    throw asCorrupt(error, path)
  }
  if (version === 0) {
    throw new DashboardError(
      'FILE_EMPTY',
      `The metrics file ${path} is an empty SQLite database: no collector has set it up yet.`,
    )
  }
  return version
}

function asCorrupt(error: unknown, path: string): DashboardError {
  if (error instanceof DashboardError) return error
  const code = (error as { code?: unknown }).code
  const message = (error as Error).message
  if (isCorruption(error)) {
    return new DashboardError('CORRUPT', `The metrics file ${path} is damaged: ${message}.`)
  }
  if (typeof code === 'string' && code.startsWith('SQLITE_CANTOPEN')) {
    return new DashboardError(
      'READ_ONLY',
      `The metrics file ${path} cannot be opened (${message}). A file written by a running ` +
        'collector needs its folder to be writable, or its -shm file to exist, to be read.',
    )
  }
  return new DashboardError('INTERNAL', `The metrics file ${path} cannot be read: ${message}.`)
}

export interface OpenOptions {
  /**
   * Check the file with SQLite's `quick_check` when opening. It reads every
   * page (about 0.1 s per 100 MB): files up to `fullCheckMaxBytes` are
   * checked whole; larger ones every table but `request`, whose pages only
   * the latest errors, the IP breakdown and a range's first and last minutes
   * read (damage there is reported by the query that meets it). Default true.
   */
  quickCheck?: boolean
  /** largest file checked whole on open; default 64 MiB */
  fullCheckMaxBytes?: number
}

const FULL_CHECK_MAX_BYTES = 64 * 1024 * 1024

/** First schema whose files hold rollups; older files get them in the connection's TEMP schema. */
const ROLLUPS_SINCE = 3
/** First schema whose files count requests per IP (rollup_ip_day). */
const IP_ROLLUPS_SINCE = 4
/** First schema whose files find requests by rollup_hour's id spans, not an index (endpoint_id, time). */
const REQUEST_SPANS_SINCE = 5

function quickCheck(db: Database.Database, path: string, sizeBytes: number, options: OpenOptions) {
  if (!(options.quickCheck ?? true)) return
  const whole = sizeBytes <= (options.fullCheckMaxBytes ?? FULL_CHECK_MAX_BYTES)
  const tables = whole
    ? [undefined]
    : (db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name <> 'request'")
        .pluck()
        .all() as string[])
  for (const table of tables) {
    const pragma = table === undefined ? 'quick_check(1)' : `quick_check("${table}")`
    const result = db.pragma(pragma, { simple: true }) as string
    if (result !== 'ok') {
      throw new DashboardError(
        'CORRUPT',
        `The metrics file ${path} is damaged (SQLite's check says: ${result}).`,
      )
    }
  }
}

/** A validated, read-only connection to one metrics file. */
export class MetricsConnection {
  private lastSize = 0
  /** for a file older than schema 3: the largest request id counted in the TEMP rollups */
  private tempRollupsThrough: number | undefined

  private constructor(
    readonly path: string,
    readonly db: Database.Database,
    readonly schemaVersion: number,
    readonly identity: FileIdentity,
  ) {}

  /**
   * Opens `path` for queries after checking that it is a readable Routemeter
   * file; throws a DashboardError naming the file and what is wrong.
   */
  static open(path: string, options: OpenOptions = {}): MetricsConnection {
    const absolute = resolve(path)
    const stats = inspectFile(absolute)
    let db: Database.Database
    try {
      db = connect(absolute, { readonly: true, fileMustExist: true, timeout: 2000 })
    } catch (error) {
      throw asCorrupt(error, absolute)
    }
    try {
      const version = checkRoutemeterSchema(db, absolute)
      quickCheck(db, absolute, stats.size, options)
      // A larger page cache: the views read rollups, and requests at a range's ends.
      db.pragma('cache_size = -65536')
      const connection = new MetricsConnection(absolute, db, version, identityOf(stats))
      if (version < ROLLUPS_SINCE) {
        // The app never changes a file: an older one gets its rollups in memory.
        db.pragma('temp_store = MEMORY')
        db.exec(rollupTablesSql('temp') + ipRollupTableSql('temp'))
        connection.tempRollupsThrough = 0
        connection.refreshRollups()
      }
      return connection
    } catch (error) {
      db.close()
      throw asCorrupt(error, absolute)
    }
  }

  /**
   * For a file older than schema 3 (whose collector keeps no rollups), counts
   * the requests written since the last call into the TEMP rollups; nothing
   * to do for newer files, whose writer keeps them.
   */
  refreshRollups(): void {
    if (this.tempRollupsThrough === undefined) return
    this.tempRollupsThrough = this.db.transaction(() =>
      rollUpAfter(this.db, this.tempRollupsThrough!),
    )()
  }

  /**
   * Whether rollup_ip_day counts requests per IP (as rollup_user_day per
   * user, at the same watermark): schema 4 files, and older ones' TEMP
   * rollups. A schema 3 file has none: its IP view reads the requests.
   */
  get hasIpRollups(): boolean {
    return this.tempRollupsThrough !== undefined || this.schemaVersion >= IP_ROLLUPS_SINCE
  }

  /**
   * Whether the requests of an endpoint and hour are found through the id
   * span rollup_hour keeps (schema 5, whose request table has no index on
   * endpoint and time); older files have that index.
   */
  get hasRequestSpans(): boolean {
    return this.schemaVersion >= REQUEST_SPANS_SINCE
  }

  /**
   * The largest request id that rollup_user_day counts: the writer counts
   * users in larger steps, and the views read the requests above it.
   */
  userRollupsThrough(): number {
    // TEMP rollups count users at once.
    if (this.tempRollupsThrough !== undefined) return Number.MAX_SAFE_INTEGER
    return userRollupWatermark(this.db)
  }

  /** Size of the file in bytes; the last one known once the file is gone. */
  /** Bytes on disk: the file and its -wal (rows not yet folded into the file are there). */
  size(): number {
    try {
      this.lastSize = statSync(this.path).size
    } catch {
      // deleted while open: the connection still reads it
    }
    let wal = 0
    try {
      wal = statSync(`${this.path}-wal`).size
    } catch {
      // no -wal: nothing written since the last checkpoint, or not in WAL mode
    }
    return this.lastSize + wal
  }

  /** Changes whenever another connection commits to the file. */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number
  }

  /** Whether the path still names the file this connection reads. */
  fileState(): 'same' | 'missing' | 'replaced' {
    let stats: Stats
    try {
      stats = statSync(this.path)
    } catch {
      return 'missing'
    }
    return sameFile(identityOf(stats), this.identity) ? 'same' : 'replaced'
  }

  get open(): boolean {
    return this.db.open
  }

  close(): void {
    if (this.db.open) this.db.close()
  }
}

export function toEndpoint(row: EndpointRow): Endpoint {
  return {
    id: row.id,
    method: row.method,
    route: row.route,
    level: row.monitor_level,
    lastRequested: row.last_requested,
    firstSeen: row.first_seen,
  }
}

/**
 * Runs `write` in an IMMEDIATE transaction on a short-lived read-write
 * connection to a file already known to be a Routemeter file of this schema.
 */
function withWriteConnection<T>(path: string, write: (db: Database.Database) => T): T {
  inspectFile(path)
  let db: Database.Database
  try {
    // Waits up to 3 s for a collector's batch to commit.
    db = connect(path, { fileMustExist: true, timeout: 3000 })
  } catch (error) {
    throw writeError(error, path)
  }
  try {
    checkRoutemeterSchema(db, path)
    return db.transaction(() => write(db)).immediate()
  } catch (error) {
    throw writeError(error, path)
  } finally {
    db.close()
  }
}

function writeError(error: unknown, path: string): DashboardError {
  if (error instanceof DashboardError) return error
  const code = (error as { code?: unknown }).code
  const message = (error as Error).message
  if (
    typeof code === 'string' &&
    (code.startsWith('SQLITE_READONLY') ||
      code.startsWith('SQLITE_CANTOPEN') ||
      code.startsWith('SQLITE_PERM') ||
      code === 'SQLITE_AUTH')
  ) {
    return new DashboardError(
      'READ_ONLY',
      `The metrics file ${path} cannot be written (${message}); ` +
        'check the permissions of the file and its folder.',
    )
  }
  if (typeof code === 'string' && code.startsWith('SQLITE_BUSY')) {
    return new DashboardError(
      'INTERNAL',
      `The metrics file ${path} stayed locked by another process for 3 s; try again.`,
    )
  }
  return asCorrupt(error, path)
}

/**
 * Sets an endpoint's monitor level in the file; a running collector picks it
 * up at its next level poll. Returns the endpoint as now stored.
 */
export function writeMonitorLevel(path: string, endpointId: number, level: MonitorLevel): Endpoint {
  return withWriteConnection(path, (db) => {
    const changed = db
      .prepare('UPDATE endpoint SET monitor_level = ? WHERE id = ?')
      .run(level, endpointId).changes
    if (changed === 0) throw badArgument(`there is no endpoint with id ${endpointId} in ${path}`)
    const row = db
      .prepare(
        'SELECT id, method, route, monitor_level, first_seen, last_requested FROM endpoint WHERE id = ?',
      )
      .get(endpointId) as EndpointRow
    return toEndpoint(row)
  })
}

/**
 * Writes a retention policy into a metrics file (meta `retention_policy`,
 * set by the app): the collectors writing it re-read it within a flush and
 * prune by it. A file before schema 7 has no collector that would: refused.
 */
export function writeRetentionPolicy(path: string, settings: RetentionSettings, now: number): void {
  withWriteConnection(path, (db) => {
    const version = Number(db.pragma('user_version', { simple: true }))
    if (version < RETENTION_SINCE) {
      throw badArgument(
        `${path} has schema ${version}: retention needs a collector of schema ${RETENTION_SINCE} or later writing it`,
      )
    }
    const policy: RetentionPolicy = { ...settings, setBy: 'app', setAt: now }
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(
      POLICY_KEY,
      JSON.stringify(policy),
    )
  })
}

/** Schema 7 brought retention. */
const RETENTION_SINCE = 7

/** Meta key that marks the generated demo database. */
export const DEMO_META_KEY = 'routemeter_desktop_demo'

/** Marks a freshly generated file as the demo database (the only meta row we write). */
export function markAsDemo(path: string): void {
  withWriteConnection(resolve(path), (db) => {
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(DEMO_META_KEY, '1')
  })
}
