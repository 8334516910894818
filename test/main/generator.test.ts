/**
 * The traffic generator (`npm run generate`): the bulk writer's file (rows
 * made and counted on this thread, inserted by a thread of its own) against
 * the collector's own path on one thread (MetricsStore.write), row by row
 * and rollup by rollup, and against the rollups counted again from its
 * requests. Real files, a real writer thread.
 */
import Database from 'better-sqlite3'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BulkWriter, RollupCounter } from 'routemeter/internal/bulk'
import { MetricsStore, RollupColumns, rebuildRollups, USER_ROLLUP_ROWS } from 'routemeter/writer'
import { generateMetricsFile } from '../../src-main/services/generator/index.js'
import { tempDir } from '../fixtures/metrics-files.js'

const temp = tempDir('routemeter-generator-')
afterAll(() => temp.cleanup())

// More requests than one users' step, in batches that split hours and days.
const OPTIONS = {
  requests: USER_ROLLUP_ROWS + 40_000,
  days: 9,
  end: Date.UTC(2026, 10, 20, 15),
  endpoints: 12,
  users: 40,
  versions: 4,
  batchSize: 7_000,
}

/** Every row of a query, in its order, hashed; and the count. */
function digest(db: Database.Database, sql: string): { rows: number; sha256: string } {
  const hash = createHash('sha256')
  let rows = 0
  for (const row of db.prepare(sql).raw().iterate()) {
    hash.update(
      JSON.stringify(row, (_, v: unknown) => (v instanceof Buffer ? v.toString('hex') : v)),
    )
    rows++
  }
  return { rows, sha256: hash.digest('hex') }
}

// Ids differ between the two paths (names are registered in another order): compare by names.
const REQUESTS = `
  SELECT e.method, e.route, r.time, r.duration_us, r.status, v.name, g.name, ip.address, r.aborted, n.name
  FROM request r JOIN endpoint e ON e.id = r.endpoint_id JOIN version v ON v.id = r.version_id
  LEFT JOIN user_group g ON g.id = r.user_group_id LEFT JOIN client_ip ip ON ip.id = r.client_ip_id
  LEFT JOIN node n ON n.id = r.node_id ORDER BY r.id`
const ENDPOINTS = `SELECT method, route, monitor_level, last_requested,
  CASE WHEN route = '(unmatched)' THEN NULL ELSE first_seen END FROM endpoint ORDER BY method, route`
const VERSIONS = 'SELECT name, source, first_seen FROM version ORDER BY name'
const by = (table: string, keys: string, client = '') => `
  SELECT e.method, e.route, t.${keys}, v.name, n.name, ${client}
         t.requests, t.sum_us, t.min_us, t.max_us, hex(t.histogram)
  FROM ${table} t JOIN endpoint e ON e.id = t.endpoint_id JOIN version v ON v.id = t.version_id
  LEFT JOIN node n ON n.id = t.node_id`
const ROLLUPS = {
  hours: `${by('rollup_hour', 'hour', 't.errors_4xx, t.errors_5xx,')} ORDER BY 1, 2, 3, 4`,
  days: `${by('rollup_day', 'day', 't.errors_4xx, t.errors_5xx,')} ORDER BY 1, 2, 3, 4`,
  users: `${by('rollup_user_day', 'day', 'g.name AS user,')}
          LEFT JOIN user_group g ON g.id = t.user_group_id ORDER BY 1, 2, 3, 6, 4`,
  ips: `${by('rollup_ip_day', 'day', 'ip.address,')}
        LEFT JOIN client_ip ip ON ip.id = t.client_ip_id ORDER BY 1, 2, 3, 6, 4`,
  statuses: `SELECT coalesce(e.method || ' ' || e.route, '(all)'), s.hour, s.status, s.requests
             FROM rollup_status s LEFT JOIN endpoint e ON e.id = s.endpoint_id ORDER BY 1, 2, 3`,
  spans: `SELECT endpoint_id, hour, version_id, node_id, first_id, last_id FROM rollup_hour ORDER BY 1, 2, 3, 4`,
}

function contents(path: string): Record<string, { rows: number; sha256: string }> {
  const db = new Database(path, { readonly: true })
  try {
    return {
      requests: digest(db, REQUESTS),
      endpoints: digest(db, ENDPOINTS),
      versions: digest(db, VERSIONS),
      ...Object.fromEntries(
        Object.entries(ROLLUPS)
          .filter(([name]) => name !== 'spans')
          .map(([name, sql]) => [name, digest(db, sql)]),
      ),
    }
  } finally {
    db.close()
  }
}

describe('the generator', () => {
  const threaded = join(temp.dir, 'threaded.db')
  const inline = join(temp.dir, 'inline.db')
  const progress: number[] = []
  const summary = generateMetricsFile(threaded, {
    ...OPTIONS,
    onProgress: (written) => progress.push(written),
  })
  generateMetricsFile(inline, { ...OPTIONS, thread: false })

  it('writes every request asked for, reporting progress as it goes', () => {
    expect(summary.requests).toBe(OPTIONS.requests)
    expect(progress.at(-1)).toBe(OPTIONS.requests)
    expect(progress.length).toBeGreaterThanOrEqual(OPTIONS.requests / OPTIONS.batchSize)
    const db = new Database(threaded, { readonly: true })
    expect(db.prepare('SELECT count(*), max(id) FROM request').raw().get()).toEqual([
      OPTIONS.requests,
      OPTIONS.requests,
    ])
    expect(db.prepare('PRAGMA integrity_check').pluck().get()).toBe('ok')
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    db.close()
    // the users' and IPs' rollups, written apart, were moved in: their file is gone
    expect(existsSync(`${threaded}.clients`)).toBe(false)
  })

  it('the bulk writer thread writes the same requests, endpoints and rollups as MetricsStore.write', () => {
    const a = contents(threaded)
    const b = contents(inline)
    expect(a.requests!.rows).toBe(OPTIONS.requests)
    expect(a.users!.rows).toBeGreaterThan(0)
    expect(a.ips!.rows).toBeGreaterThan(0)
    expect(a).toEqual(b)
  })

  it("its rollups equal the requests counted again, and every hour's id span is its requests'", () => {
    const copy = join(temp.dir, 'rebuilt.db')
    copyFileSync(threaded, copy)
    const db = new Database(copy)
    // Both watermarks at the last request: nothing waits to be counted.
    expect(
      db
        .prepare(
          "SELECT value FROM meta WHERE key IN ('rollups_through_request', 'user_rollups_through_request')",
        )
        .pluck()
        .all(),
    ).toEqual([String(OPTIONS.requests), String(OPTIONS.requests)])
    const spans = digest(db, ROLLUPS.spans)
    expect(spans.rows).toBeGreaterThan(100)
    expect(spans).toEqual(
      digest(
        db,
        `SELECT endpoint_id, time / 3600000, version_id, node_id, min(id), max(id)
         FROM request GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
      ),
    )
    rebuildRollups(db)
    db.close()
    const rebuilt = contents(copy)
    const written = contents(threaded)
    for (const name of ['hours', 'days', 'users', 'ips', 'statuses']) {
      expect(written[name], name).toEqual(rebuilt[name])
    }
  })

  it('makes traffic with what real traffic has: versions, errors, a skewed duration', () => {
    const db = new Database(threaded, { readonly: true })
    expect(db.prepare('SELECT count(*) FROM version').pluck().get()).toBe(OPTIONS.versions)
    const [errors, slow, median] = db
      .prepare(
        `SELECT avg(status >= 400), avg(duration_us > 10 * (SELECT duration_us FROM request ORDER BY duration_us
           LIMIT 1 OFFSET (SELECT count(*) / 2 FROM request))),
           (SELECT duration_us FROM request ORDER BY duration_us LIMIT 1 OFFSET (SELECT count(*) / 2 FROM request))
         FROM request`,
      )
      .raw()
      .get() as number[]
    expect(errors).toBeGreaterThan(0.01)
    expect(errors).toBeLessThan(0.2)
    expect(median).toBeGreaterThan(0)
    expect(slow).toBeGreaterThan(0.001) // a long tail
    db.close()
  })

  it('a run that fails halfway leaves no file behind, on either path', () => {
    for (const thread of [true, false]) {
      const broken = join(temp.dir, `broken-${thread}.db`)
      expect(() =>
        generateMetricsFile(broken, {
          ...OPTIONS,
          thread,
          onProgress: (written) => {
            // after the first users' step: the bulk writer keeps their rollups in a file apart
            if (written > USER_ROLLUP_ROWS + OPTIONS.batchSize)
              throw new Error('stopped by the test')
          },
        }),
      ).toThrow('stopped by the test')
      expect(existsSync(broken)).toBe(false)
      expect(existsSync(`${broken}-wal`)).toBe(false)
      expect(existsSync(`${broken}.clients`)).toBe(false)
    }
  })

  it('the same options give the same file; an existing file is refused without overwrite', () => {
    const again = join(temp.dir, 'again.db')
    generateMetricsFile(again, OPTIONS)
    expect(contents(again)).toEqual(contents(threaded))
    expect(() => generateMetricsFile(again, OPTIONS)).toThrow(/exists already/)
  })
})

describe('the bulk writer', () => {
  /** A new file with one endpoint and version, and `n` requests counted from request `afterId`. */
  function setUp(name: string): { path: string; endpointId: number; versionId: number } {
    const path = join(temp.dir, name)
    const store = new MetricsStore(path, { name: '1.0.0', source: 'option' }, 0, undefined, 'n1')
    const endpoint = {
      id: undefined,
      method: 'GET',
      route: '/a',
      level: 1 as const,
      pendingLastRequested: 0,
    }
    store.write([], [], [endpoint], 0)
    const versionId = store.versionId
    store.close()
    return { path, endpointId: endpoint.id!, versionId }
  }
  function rows(first: number, n: number, endpointId: number, versionId: number): RollupColumns {
    const columns = new RollupColumns(n)
    for (let i = 0; i < n; i++) {
      columns.push(
        first + i,
        endpointId,
        3_600_000 + i * 1000,
        1000 + i,
        200,
        versionId,
        1,
        null,
        null,
      )
    }
    return columns
  }
  const count = (path: string): number => {
    const db = new Database(path, { readonly: true })
    const n = db.prepare('SELECT count(*) FROM request').pluck().get() as number
    db.close()
    return n
  }

  it("throws the thread's error at the next write or close, and writes nothing of that batch", () => {
    const { path, endpointId, versionId } = setUp('refused.db')
    const writer = new BulkWriter(path)
    expect(writer.threaded).toBe(true)
    const counter = new RollupCounter(0)
    const first = rows(1, 100, endpointId, versionId)
    writer.write({
      rows: first,
      aborted: new Uint8Array(100),
      counted: counter.count(first),
      touched: new Float64Array(0),
    })
    // Counted as if the file were empty: it follows no rollups the file has.
    const wrong = rows(101, 50, endpointId, versionId)
    const stale = new RollupCounter(100)
    const countedAgain = stale.count(wrong)
    countedAgain.afterId = 0 // a batch that claims to follow request 0
    let error: unknown
    try {
      writer.write({
        rows: wrong,
        aborted: new Uint8Array(50),
        counted: countedAgain,
        touched: new Float64Array(0),
      })
      writer.close()
    } catch (e) {
      error = e
    }
    expect(String(error)).toMatch(/50 rows are not requests 1\.\.150 of their rollups/)
    expect(count(path)).toBe(100)
  })

  it('refuses a file that is not a metrics file, with its reason', () => {
    const path = join(temp.dir, 'text.db')
    writeFileSync(path, 'not a database\n'.repeat(100))
    const writer = new BulkWriter(path)
    const empty = new RollupColumns(0)
    expect(() => {
      writer.write({
        rows: empty,
        aborted: new Uint8Array(0),
        counted: new RollupCounter(0).count(empty),
        touched: new Float64Array(0),
      })
      writer.close()
    }).toThrow(/not a database|file is not a database/i)
  })

  it('refuses to move rollups written apart into a file that has its own, and removes theirs', () => {
    const { path, endpointId, versionId } = setUp('apart.db')
    const db = new Database(path)
    db.prepare(`INSERT INTO rollup_user_day VALUES (?, 0, 1, ?, 0, 1, 10, 10, 10, x'0001')`).run(
      endpointId,
      versionId,
    )
    db.close()
    const writer = new BulkWriter(path, { clientsApart: true })
    const batch = rows(1, 100, endpointId, versionId)
    writer.write({
      rows: batch,
      aborted: new Uint8Array(100),
      counted: new RollupCounter(0).count(batch, true),
      touched: new Float64Array(0),
    })
    expect(existsSync(`${path}.clients`)).toBe(true)
    expect(() => writer.close()).toThrow(/rollup_user_day has rows already/)
    expect(existsSync(`${path}.clients`)).toBe(false)
    // the thread's rows are in; the file's own user rollup is as it was
    const after = new Database(path, { readonly: true })
    expect(after.prepare('SELECT count(*) FROM request').pluck().get()).toBe(100)
    expect(after.prepare('SELECT requests FROM rollup_user_day').pluck().all()).toEqual([1])
    after.close()
  })

  it("writes on the caller's thread when asked to, with the same checks", () => {
    const { path, endpointId, versionId } = setUp('bulk-inline.db')
    const writer = new BulkWriter(path, { thread: false })
    expect(writer.threaded).toBe(false)
    const batch = rows(5, 10, endpointId, versionId) // ids 5..14: requests 1..4 missing
    const counted = new RollupCounter(4).count(batch)
    expect(() =>
      writer.write({
        rows: batch,
        aborted: new Uint8Array(10),
        counted,
        touched: new Float64Array(0),
      }),
    ).toThrow(/do not follow the file's, counted through request 0/)
    writer.close()
    expect(count(path)).toBe(0)
  })

  it('refuses rows whose ids SQLite would not give them: a request the rollups do not count', () => {
    const { path, endpointId, versionId } = setUp('uncounted.db')
    // A request in the table that no rollup counts (the watermark stays at 0).
    const db = new Database(path)
    db.prepare(
      'INSERT INTO request (id, endpoint_id, time, duration_us, status, version_id) VALUES (1, ?, 0, 5, 200, ?)',
    ).run(endpointId, versionId)
    db.close()
    const writer = new BulkWriter(path, { thread: false })
    const batch = rows(1, 40, endpointId, versionId)
    expect(() =>
      writer.write({
        rows: batch,
        aborted: new Uint8Array(40),
        counted: new RollupCounter(0).count(batch),
        touched: new Float64Array(0),
      }),
    ).toThrow(/request 32 was inserted as 33: the ids counted do not follow the table's/)
    writer.close()
    expect(count(path)).toBe(1)
    const after = new Database(path, { readonly: true })
    expect(after.prepare('SELECT count(*) FROM rollup_hour').pluck().get()).toBe(0)
    after.close()
  })
})
