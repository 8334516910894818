import Database from 'better-sqlite3'
import Koa from 'koa'
import { readFileSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { userRollupWatermark } from 'routemeter/writer'
import {
  APPLICATION_ID,
  bind,
  checkSchema,
  migrate,
  NotRoutemeterFileError,
  SCHEMA_VERSION,
  SchemaTooNewError,
  TABLES,
  type ClientIpRow,
  type EndpointRow,
  type MetaRow,
  type NodeRow,
  type RequestRow,
  type UserGroupRow,
  type VersionRow,
} from 'routemeter'
import {
  defer,
  errorSink,
  listen,
  openDb,
  removeTempDirs,
  request,
  tempDatabase,
  waitFor,
  withDb,
} from './helpers.js'

afterAll(removeTempDirs)

/** A Koa app with the collector and one route; returns its handle and URL. */
async function koaWith(options: Parameters<typeof bind>[1]) {
  const app = new Koa()
  const handle = bind(app, options)
  defer(() => handle.close())
  app.use((ctx) => {
    ctx.body = `hello ${ctx.path}`
  })
  const { url } = await listen(app)
  return { handle, url }
}

/** Columns of every table, to compare with the row types of schema/types.ts. */
const COLUMNS: Record<string, string[]> = {
  [TABLES.endpoint]: [
    'id',
    'method',
    'route',
    'monitor_level',
    'first_seen',
    'last_requested',
  ] satisfies (keyof EndpointRow)[],
  [TABLES.version]: ['id', 'name', 'source', 'first_seen', 'tags'] satisfies (keyof VersionRow)[],
  [TABLES.userGroup]: ['id', 'name'] satisfies (keyof UserGroupRow)[],
  [TABLES.clientIp]: ['id', 'address'] satisfies (keyof ClientIpRow)[],
  [TABLES.request]: [
    'id',
    'endpoint_id',
    'time',
    'duration_us',
    'status',
    'version_id',
    'user_group_id',
    'client_ip_id',
    'aborted',
    'node_id',
    'weight',
  ] satisfies (keyof RequestRow)[],
  [TABLES.meta]: ['key', 'value'] satisfies (keyof MetaRow)[],
  [TABLES.node]: ['id', 'name', 'first_seen'] satisfies (keyof NodeRow)[],
}

describe('schema', () => {
  it('a fresh file is migrated to SCHEMA_VERSION with the application id set', async () => {
    const database = tempDatabase()
    const startedAt = Date.now()
    const { handle, url } = await koaWith({ database, version: 'one' })
    await request(`${url}/x`)
    handle.flush()

    const db = openDb(database)
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
    expect(db.pragma('application_id', { simple: true })).toBe(APPLICATION_ID)
    expect(APPLICATION_ID).toBe(0x524d5452)
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    // 2: incremental, so that the space of pruned rows can go back to the disk
    expect(db.pragma('auto_vacuum', { simple: true })).toBe(2)
    for (const [table, columns] of Object.entries(COLUMNS)) {
      const actual = (db.pragma(`table_info(${table})`) as Array<{ name: string }>).map(
        (c) => c.name,
      )
      expect(actual, table).toEqual(columns)
    }
    const meta = Object.fromEntries(
      (db.prepare('SELECT key, value FROM meta').all() as MetaRow[]).map((m) => [m.key, m.value]),
    )
    expect(meta.created_by).toBe('routemeter')
    expect(Number(meta.created_at)).toBeGreaterThanOrEqual(startedAt - 1)
    expect(checkSchema(db)).toBe(SCHEMA_VERSION)
    expect(migrate(db)).toBe(SCHEMA_VERSION) // nothing left to do
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok')
    expect(db.pragma('foreign_key_check')).toEqual([])
  })

  it('checkSchema reads a brand-new empty file as version 0 without changing it', () => {
    const database = tempDatabase()
    const db = new Database(database)
    defer(() => db.close())
    expect(checkSchema(db)).toBe(0)
    expect(db.pragma('user_version', { simple: true })).toBe(0)
    expect(migrate(db)).toBe(0)
    expect(checkSchema(db)).toBe(SCHEMA_VERSION)
  })

  it('the file enforces its constraints', async () => {
    const database = tempDatabase()
    const { handle } = await koaWith({ database })
    handle.close()
    const db = openDb(database)
    expect(() =>
      db
        .prepare('INSERT INTO endpoint (method, route, monitor_level, first_seen) VALUES (?,?,?,?)')
        .run('GET', '/x', 4, 0),
    ).toThrow(/CHECK constraint/)
    db.prepare(
      'INSERT INTO endpoint (method, route, monitor_level, first_seen) VALUES (?,?,?,?)',
    ).run('GET', '/x', 1, 0)
    expect(() =>
      db
        .prepare('INSERT INTO endpoint (method, route, monitor_level, first_seen) VALUES (?,?,?,?)')
        .run('GET', '/x', 1, 0),
    ).toThrow(/UNIQUE/)
    expect(() =>
      db.prepare("INSERT INTO version (name, source, first_seen) VALUES ('v', 'guess', 0)").run(),
    ).toThrow(/CHECK constraint/)
    expect(() =>
      db
        .prepare(
          'INSERT INTO request (endpoint_id, time, duration_us, status, version_id, aborted) VALUES (1, 0, 0, 200, 1, 2)',
        )
        .run(),
    ).toThrow(/CHECK constraint/)
  })

  it('a file from a newer Routemeter is refused with SchemaTooNewError, reported through onError', async () => {
    const database = tempDatabase()
    const first = await koaWith({ database })
    first.handle.close()
    withDb(database, (db) => db.pragma(`user_version = ${SCHEMA_VERSION + 1}`))
    const bytes = readFileSync(database)

    const direct = new Database(database, { readonly: true })
    defer(() => direct.close())
    expect(() => checkSchema(direct)).toThrow(SchemaTooNewError)
    const writable = new Database(database)
    defer(() => writable.close())
    expect(() => migrate(writable)).toThrow(SchemaTooNewError)
    try {
      migrate(writable)
    } catch (error) {
      expect(error).toMatchObject({
        name: 'SchemaTooNewError',
        fileVersion: SCHEMA_VERSION + 1,
        knownVersion: SCHEMA_VERSION,
      })
      expect((error as Error).message).toMatch(/newer Routemeter/)
    }
    writable.close()

    const sink = errorSink()
    const { handle, url } = await koaWith({ database, onError: sink.onError })
    expect(await request(`${url}/still`)).toMatchObject({ status: 200, body: 'hello /still' })
    expect(handle.flush()).toBe(false)
    expect(sink.errors.length).toBeGreaterThanOrEqual(1)
    expect(sink.errors[0]).toBeInstanceOf(SchemaTooNewError)
    handle.close()
    // The newer file is left exactly as it was.
    expect(readFileSync(database).equals(bytes)).toBe(true)
  })

  it('a SQLite file of another application is refused with NotRoutemeterFileError', async () => {
    const database = tempDatabase('other.sqlite')
    const other = new Database(database)
    other.exec('CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)')
    other.prepare('INSERT INTO customers (name) VALUES (?)').run('ada')
    other.close()
    const bytes = readFileSync(database)

    const sink = errorSink()
    const { handle, url } = await koaWith({ database, onError: sink.onError })
    expect((await request(`${url}/a`)).status).toBe(200)
    handle.close()
    await waitFor('an error', () => sink.errors.length > 0)
    expect(sink.errors[0]).toBeInstanceOf(NotRoutemeterFileError)
    expect(readFileSync(database).equals(bytes)).toBe(true)
  })

  describe('query plans of the views', () => {
    /** A file with some rows for three endpoints, two versions and two groups. */
    async function filledFile(): Promise<Database.Database> {
      const database = tempDatabase()
      for (const version of ['v1', 'v2']) {
        const { handle, url } = await koaWith({
          database,
          version,
          groupBy: (ctx) => ((ctx as Koa.Context).path.length % 2 ? 'odd' : 'even'),
        })
        for (let i = 0; i < 30; i++) await request(`${url}/${['a', 'bb', 'ccc'][i % 3]}`)
        handle.close()
      }
      const db = openDb(database, { readonly: true })
      return db
    }

    function plan(db: Database.Database, sql: string): string {
      const parameters = Array.from(sql.matchAll(/\?/g), () => 0)
      return (
        db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...parameters) as Array<{ detail: string }>
      )
        .map((row) => row.detail)
        .join('\n')
    }

    it('reads the rollups by primary key, requests by the id spans of rollup_hour, errors by their partial index', async () => {
      const db = await filledFile()
      expect(db.prepare('SELECT count(*) FROM request').pluck().get()).toBe(60)
      expect(
        db
          .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'request' AND sql IS NOT NULL",
          )
          .pluck()
          .all(),
      ).toEqual(['request_errors'])
      // The writer counted every request into the rollups.
      for (const table of ['rollup_hour', 'rollup_day', 'rollup_user_day', 'rollup_status']) {
        // (rollup_status also counts all endpoints together, under endpoint_id 0; users are
        // counted in steps, the requests above their watermark wait)
        const waiting =
          table === 'rollup_user_day'
            ? db
                .prepare('SELECT count(*) FROM request WHERE id > ?')
                .pluck()
                .get(userRollupWatermark(db))
            : 0
        expect(
          (db.prepare(`SELECT sum(requests) FROM ${table} WHERE endpoint_id > 0`).pluck().get() as
            number | null) ?? 0,
          table,
        ).toBe(60 - (waiting as number))
      }

      // As the desktop app asks (src-main/services/views/sqlite-reader.ts): endpoints as a JSON list.
      const endpoints = 'endpoint_id IN (SELECT value FROM json_each(?))'
      // A range's ends: the spans of its hours, then those ranges of the request table.
      expect(
        plan(
          db,
          `SELECT first_id, last_id FROM rollup_hour WHERE ${endpoints} AND hour >= ? AND hour < ? AND first_id IS NOT NULL ORDER BY first_id`,
        ),
      ).toMatch(/SEARCH rollup_hour USING PRIMARY KEY \(endpoint_id=\? AND hour>\? AND hour<\?\)/)
      expect(
        plan(
          db,
          `SELECT duration_us, status FROM request NOT INDEXED WHERE id BETWEEN ? AND ? AND ${endpoints} AND time >= ? AND time < ?`,
        ),
      ).toMatch(/SEARCH request USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/)
      // The latest errors of an endpoint walk the index of errors backwards.
      expect(
        plan(
          db,
          `SELECT r.id FROM request r WHERE r.endpoint_id = ? AND r.time >= ? AND r.time < ?
             AND (r.status >= 400 OR r.aborted = 1) ORDER BY r.time DESC, r.id DESC LIMIT 10`,
        ),
      ).toMatch(/SEARCH r USING INDEX request_errors \(endpoint_id=\? AND time>\? AND time<\?\)/)
      for (const [table, unit, column] of [
        ['rollup_day', 'day', 'histogram'],
        ['rollup_hour', 'hour', 'histogram'],
        ['rollup_user_day', 'day', 'histogram'],
        ['rollup_status', 'hour', 'requests'],
      ]) {
        expect(
          plan(
            db,
            `SELECT ${column} FROM ${table} WHERE ${endpoints} AND ${unit} >= ? AND ${unit} < ?`,
          ),
          table,
        ).toMatch(
          new RegExp(
            `SEARCH ${table} USING PRIMARY KEY \\(endpoint_id=\\? AND ${unit}>\\? AND ${unit}<\\?\\)`,
          ),
        )
      }
      // Requests per hour (utilization, hour heatmap) without reading the histograms.
      expect(
        plan(
          db,
          `SELECT hour, sum(requests) FROM rollup_hour WHERE ${endpoints} AND hour >= ? AND hour < ? GROUP BY 1`,
        ),
      ).toMatch(
        /USING COVERING INDEX rollup_hour_requests \(endpoint_id=\? AND hour>\? AND hour<\?\)/,
      )
      // The requests not yet counted per user are the newest: found by id, not by the index.
      expect(
        plan(
          db,
          `SELECT duration_us FROM request NOT INDEXED WHERE id > ? AND ${endpoints} AND time >= ? AND time < ?`,
        ),
      ).toMatch(/SEARCH request USING INTEGER PRIMARY KEY \(rowid>\?\)/)
      // The first and last hour of an endpoint are one step in rollup_hour's key.
      expect(plan(db, 'SELECT min(hour) FROM rollup_hour WHERE endpoint_id = ?')).toMatch(
        /SEARCH rollup_hour USING (COVERING INDEX rollup_hour_requests|PRIMARY KEY) \(endpoint_id=\?\)/,
      )
    })
  })
})
