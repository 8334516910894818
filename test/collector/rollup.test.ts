/**
 * The rollups (schemas 3 and 4): histogram buckets and their encoding, and the
 * tables the writer keeps, compared with aggregates SQLite computes from the
 * request rows of the same file. Files are written by MetricsStore itself.
 */
import Database from 'better-sqlite3'
import { copyFileSync, existsSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import {
  addEncodedHistogram,
  BUCKET_COUNT,
  BUCKET_RELATIVE_WIDTH,
  bucketBounds,
  bucketOf,
  decodeHistogram,
  encodeBuckets,
  encodeHistogram,
  mergeEncodedHistograms,
  migrate,
} from 'routemeter/schema'
import {
  ipRollupTableSql,
  MetricsStore,
  rebuildRollups,
  rollUpRequests,
  rollupTablesSql,
  rollupWatermark,
  USER_ROLLUP_ROWS,
  userRollupWatermark,
  type EndpointState,
  type PendingRequest,
} from 'routemeter/writer'
import { histogramsOfEntries } from '../../collector/src/store/rollups/index.js'
import { downgrade } from '../fixtures/metrics-files.js'
import { removeTempDirs, tempDatabase } from './helpers.js'

afterAll(removeTempDirs)

const HOUR = 3_600_000
const START = Date.UTC(2026, 9, 1, 22, 17)

/** mulberry32, so every run writes the same rows */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

function endpoint(route: string): EndpointState {
  return { id: undefined, method: 'GET', route, level: 1, pendingLastRequested: 0 }
}

/**
 * Three days of requests from two versions and two nodes, in batches as the
 * collector writes them. `killed`: the file as each process leaves it when
 * killed after its last write, before it could close (and write the users
 * and IPs it counted in memory).
 */
function writeFile(path: string, rows = 6000, { killed = false } = {}): void {
  const next = random(7)
  const endpoints = [endpoint('/a'), endpoint('/b/:id'), endpoint('/c')]
  let time = START
  for (const [version, node] of [
    ['1.0.0', 'web-1'],
    ['1.1.0', 'web-2'],
  ] as const) {
    const store = new MetricsStore(path, { name: version, source: 'option' }, time, undefined, node)
    for (let written = 0; written < rows / 2; written += 500) {
      const batch: PendingRequest[] = []
      for (let i = 0; i < 500; i++) {
        time += Math.floor(next() * 45_000)
        const roll = next()
        batch.push({
          endpoint: endpoints[Math.floor(next() * 3)]!,
          time,
          // Log-normal around 20 ms, with a few 0 µs and very slow ones.
          durationUs: roll < 0.01 ? 0 : Math.round(20_000 * Math.exp(1.2 * (next() + next() - 1))),
          status: roll > 0.97 ? 503 : roll > 0.92 ? 404 : 200,
          group: next() < 0.2 ? null : `user-${Math.floor(next() * 5)}`,
          // A few IPs and some requests without one, without drawing from `next`.
          ip: time % 5 === 0 ? null : `192.0.2.${time % 4}`,
          aborted: 0,
        })
      }
      store.write(batch, [], [], time)
    }
    if (killed) {
      // What a kill leaves: the file and its WAL as they are; the open store writes elsewhere.
      const live = `${path}.live`
      copyFileSync(path, live)
      if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, `${live}-wal`)
      store.close()
      for (const suffix of ['', '-wal']) {
        if (existsSync(live + suffix)) copyFileSync(live + suffix, path + suffix)
      }
    } else store.close()
  }
}

describe('histogram buckets', () => {
  it('every duration lies in its bucket, and buckets are at most 1/16 octave wide', () => {
    expect(bucketOf(0)).toBe(0)
    expect(bucketOf(-5)).toBe(0)
    let previous = 0
    for (const duration of [
      1,
      2,
      3,
      15,
      16,
      17,
      22,
      23,
      24,
      100,
      1023,
      1024,
      1025,
      65_535,
      1e6,
      3.6e9,
      2 ** 44 - 1,
    ]) {
      const bucket = bucketOf(duration)
      const { low, high } = bucketBounds(bucket)
      expect(duration, `bucket ${bucket}`).toBeGreaterThanOrEqual(low)
      expect(duration).toBeLessThan(high)
      expect(high - low).toBeLessThanOrEqual(BUCKET_RELATIVE_WIDTH * low + 1)
      expect(bucket).toBeGreaterThanOrEqual(previous)
      previous = bucket
    }
    // Each integer up to 100 000 µs: buckets never go back, and bounds hold.
    let last = 0
    for (let d = 1; d <= 100_000; d++) {
      const bucket = bucketOf(d)
      expect(bucket >= last).toBe(true)
      last = bucket
      const { low, high } = bucketBounds(bucket)
      if (d < low || d >= high)
        throw new Error(`${d} is outside bucket ${bucket} [${low}, ${high})`)
    }
    expect(bucketOf(2 ** 50)).toBe(BUCKET_COUNT - 1)
    expect(BUCKET_RELATIVE_WIDTH).toBeCloseTo(0.0443, 4)
  })

  it('encodes sparse counts in a few bytes, decodes and merges them back', () => {
    const histogram = new Map([
      [0, 3],
      [5, 1],
      [200, 300],
      [BUCKET_COUNT - 1, 2 ** 40],
    ])
    const encoded = encodeHistogram(histogram)
    expect(encoded.length).toBe(16) // 2 + 2 + 4 + 8 bytes: the varints of gaps and counts
    expect(decodeHistogram(encoded)).toEqual(histogram)
    const other = encodeHistogram(
      new Map([
        [5, 4],
        [201, 1],
      ]),
    )
    const merged = mergeEncodedHistograms(encoded, other)
    expect(decodeHistogram(merged)).toEqual(
      new Map([
        [0, 3],
        [5, 5],
        [200, 300],
        [201, 1],
        [BUCKET_COUNT - 1, 2 ** 40],
      ]),
    )
    expect(decodeHistogram(mergeEncodedHistograms(Buffer.alloc(0), other))).toEqual(
      decodeHistogram(other),
    )
    // A list of one bucket per request, unsorted, encodes as its counts do.
    const list = Uint16Array.from([200, 5, 0, 200, 0, BUCKET_COUNT - 1, 0, 200])
    expect(encodeBuckets(list)).toEqual(
      encodeHistogram(
        new Map([
          [0, 3],
          [5, 1],
          [200, 3],
          [BUCKET_COUNT - 1, 1],
        ]),
      ),
    )
    expect(encodeBuckets(new Uint16Array(0)).length).toBe(0)
    // A list of rollup rows' buckets (row * 1024 + bucket, one a request, any order), counted
    // densely or sorted (the writer picks by rows per request): each row's counts, encoded.
    const next = random(5)
    for (const [rows, requests] of [
      [3, 5000],
      [40, 60],
    ] as const) {
      const entries = new Uint32Array(requests)
      const expected = Array.from({ length: rows }, () => new Map<number, number>())
      for (let e = 0; e < requests; e++) {
        const drawn = Math.floor(next() * rows)
        const row = drawn === 1 ? 0 : drawn // row 1 gets no request: an empty histogram
        const bucket = Math.floor(next() * next() * BUCKET_COUNT)
        entries[e] = row * 1024 + bucket
        expected[row]!.set(bucket, (expected[row]!.get(bucket) ?? 0) + 1)
      }
      const encoded = expected.map((counts) => encodeHistogram(counts))
      expect(encoded[1]!.length).toBe(0)
      for (const dense of [true, false, undefined]) {
        expect(histogramsOfEntries(entries, requests, rows, dense)).toEqual(encoded)
      }
    }
    // Cut short, or past the last bucket: an error, never wrong counts.
    expect(() => decodeHistogram(encoded.subarray(0, encoded.length - 1))).toThrow(/cut short/)
    expect(() =>
      addEncodedHistogram(new Float64Array(BUCKET_COUNT), Buffer.from([0xff, 0x7f, 1])),
    ).toThrow(/damaged/)
  })
})

describe('rollup tables', () => {
  const path = tempDatabase()
  writeFile(path)
  // Fewer requests than USER_ROLLUP_ROWS, but the writer wrote its users and IPs
  // from memory when it closed: the next writer has none to read back.
  const writer = new Database(path)
  expect(userRollupWatermark(writer)).toBe(rollupWatermark(writer))
  expect(writer.prepare('SELECT count(*) FROM rollup_user_day').pluck().get()).toBeGreaterThan(0)
  rollUpRequests(writer, undefined, { users: 'now' }) // nothing left to count
  writer.close()
  const db = new Database(path, { readonly: true })
  afterAll(() => db.close())

  it('the writer counts every request, per hour, day, user-day and status, in its transaction', () => {
    const requests = db.prepare('SELECT count(*) FROM request').pluck().get() as number
    expect(requests).toBe(6000)
    expect(rollupWatermark(db)).toBe(db.prepare('SELECT max(id) FROM request').pluck().get())
    const expected = db
      .prepare(
        `SELECT endpoint_id, time / ${HOUR} AS hour, version_id, coalesce(node_id, 0) AS node_id,
                count(*) AS requests,
                sum(status BETWEEN 400 AND 499) AS errors_4xx, sum(status BETWEEN 500 AND 599) AS errors_5xx,
                sum(duration_us) AS sum_us, min(duration_us) AS min_us, max(duration_us) AS max_us
         FROM request GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
      )
      .all()
    const hours = db
      .prepare(
        `SELECT endpoint_id, hour, version_id, node_id, requests, errors_4xx, errors_5xx, sum_us, min_us, max_us
         FROM rollup_hour ORDER BY 1, 2, 3, 4`,
      )
      .all()
    expect(hours).toEqual(expected)
    expect(new Set(hours.map((h) => (h as { node_id: number }).node_id)).size).toBe(2)

    const days = db
      .prepare(
        `SELECT endpoint_id, day, version_id, node_id, requests, errors_4xx, errors_5xx, sum_us, min_us, max_us
         FROM rollup_day ORDER BY 1, 2, 3, 4`,
      )
      .all()
    expect(days).toEqual(
      db
        .prepare(
          `SELECT endpoint_id, time / ${24 * HOUR} AS day, version_id, coalesce(node_id, 0) AS node_id,
                  count(*) AS requests,
                  sum(status BETWEEN 400 AND 499) AS errors_4xx, sum(status BETWEEN 500 AND 599) AS errors_5xx,
                  sum(duration_us) AS sum_us, min(duration_us) AS min_us, max(duration_us) AS max_us
           FROM request GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
        )
        .all(),
    )
    expect(
      db
        .prepare(
          'SELECT endpoint_id, hour, node_id, status, requests FROM rollup_status WHERE endpoint_id > 0 ORDER BY 1, 2, 3, 4',
        )
        .all(),
    ).toEqual(
      db
        .prepare(
          `SELECT endpoint_id, time / ${HOUR} AS hour, coalesce(node_id, 0) AS node_id, status, count(*) AS requests
           FROM request GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
        )
        .all(),
    )
    // Endpoint 0 counts every endpoint together.
    expect(
      db
        .prepare(
          'SELECT hour, node_id, status, requests FROM rollup_status WHERE endpoint_id = 0 ORDER BY 1, 2, 3',
        )
        .all(),
    ).toEqual(
      db
        .prepare(
          `SELECT time / ${HOUR} AS hour, coalesce(node_id, 0) AS node_id, status, count(*) AS requests
           FROM request GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
        )
        .all(),
    )
    expect(
      db
        .prepare(
          'SELECT endpoint_id, day, user_group_id, version_id, node_id, requests, sum_us FROM rollup_user_day ORDER BY 1, 2, 3, 4, 5',
        )
        .all(),
    ).toEqual(
      db
        .prepare(
          `SELECT endpoint_id, time / ${24 * HOUR} AS day, coalesce(user_group_id, 0) AS user_group_id,
                  version_id, coalesce(node_id, 0) AS node_id, count(*) AS requests, sum(duration_us) AS sum_us
           FROM request GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`,
        )
        .all(),
    )
    const perIp = db
      .prepare(
        'SELECT endpoint_id, day, client_ip_id, version_id, node_id, requests, sum_us FROM rollup_ip_day ORDER BY 1, 2, 3, 4, 5',
      )
      .all()
    expect(perIp.some((row) => (row as { client_ip_id: number }).client_ip_id === 0)).toBe(true)
    expect(perIp).toEqual(
      db
        .prepare(
          `SELECT endpoint_id, time / ${24 * HOUR} AS day, coalesce(client_ip_id, 0) AS client_ip_id,
                  version_id, coalesce(node_id, 0) AS node_id, count(*) AS requests, sum(duration_us) AS sum_us
           FROM request GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`,
        )
        .all(),
    )
  })

  it('histograms hold each request in the bucket of its duration', () => {
    const rows = db
      .prepare('SELECT endpoint_id, day, version_id, node_id, histogram FROM rollup_day')
      .all() as Array<{
      endpoint_id: number
      day: number
      version_id: number
      node_id: number
      histogram: Buffer
    }>
    expect(rows.length).toBeGreaterThan(6)
    const durations = db.prepare(
      `SELECT duration_us FROM request WHERE endpoint_id = ? AND time / ${24 * HOUR} = ?
         AND version_id = ? AND coalesce(node_id, 0) = ?`,
    )
    for (const row of rows) {
      const expected = new Map<number, number>()
      for (const d of durations
        .pluck()
        .all(row.endpoint_id, row.day, row.version_id, row.node_id) as number[]) {
        expected.set(bucketOf(d), (expected.get(bucketOf(d)) ?? 0) + 1)
      }
      expect(decodeHistogram(row.histogram)).toEqual(expected)
    }
  })
})

describe('users, counted in steps', () => {
  it(`the writer counts users once ${USER_ROLLUP_ROWS.toLocaleString('en')} requests wait, all of them at once`, () => {
    const path = tempDatabase()
    writeFile(path, USER_ROLLUP_ROWS + 10_000, { killed: true })
    const db = new Database(path, { readonly: true })
    const counted = userRollupWatermark(db)
    expect(counted).toBeGreaterThanOrEqual(USER_ROLLUP_ROWS)
    expect(counted).toBeLessThan(USER_ROLLUP_ROWS + 10_000)
    // Exactly the requests up to the watermark, per endpoint, day and user.
    expect(
      db
        .prepare(
          'SELECT endpoint_id, day, user_group_id, sum(requests) AS n FROM rollup_user_day GROUP BY 1, 2, 3 ORDER BY 1, 2, 3',
        )
        .all(),
    ).toEqual(
      db
        .prepare(
          `SELECT endpoint_id, time / ${24 * HOUR} AS day, coalesce(user_group_id, 0) AS user_group_id, count(*) AS n
           FROM request WHERE id <= ? GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
        )
        .all(counted),
    )
    // IPs are counted with the users, through the same request.
    expect(
      db
        .prepare(
          'SELECT endpoint_id, day, client_ip_id, sum(requests) AS n FROM rollup_ip_day GROUP BY 1, 2, 3 ORDER BY 1, 2, 3',
        )
        .all(),
    ).toEqual(
      db
        .prepare(
          `SELECT endpoint_id, time / ${24 * HOUR} AS day, coalesce(client_ip_id, 0) AS client_ip_id, count(*) AS n
           FROM request WHERE id <= ? GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
        )
        .all(counted),
    )
    db.close()
  })
})

describe('migrations 0003 to 0005, and rebuilding', () => {
  /** The rollups of a file, as comparable rows. */
  function snapshot(db: Database.Database): unknown[] {
    return ['rollup_hour', 'rollup_day', 'rollup_user_day', 'rollup_ip_day', 'rollup_status'].map(
      (table) => db.prepare(`SELECT * FROM ${table} ORDER BY 1, 2, 3, 4, 5`).all(),
    )
  }

  it('a schema-2 file gets rollups equal to the writer’s, and loses the three unused indexes', () => {
    const path = tempDatabase()
    writeFile(path, 2000)
    let db = new Database(path)
    rollUpRequests(db, undefined, { users: 'now' })
    const written = snapshot(db)
    // Back to what a schema-2 collector left: no rollups, four indexes.
    downgrade(db, 2)
    db.close()
    // A new connection, as a collector of this version opening the file.
    db = new Database(path)
    expect(migrate(db)).toBe(2)
    expect(snapshot(db)).toEqual(written)
    expect(
      db
        .prepare(
          "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'request' AND sql IS NOT NULL",
        )
        .pluck()
        .all(),
    ).toEqual(['request_errors'])
    db.close()
  })

  it("a schema-3 file gets per-IP rollups through the users' watermark, then the writer goes on from there", () => {
    const path = tempDatabase()
    writeFile(path, USER_ROLLUP_ROWS + 6000, { killed: true })
    const db = new Database(path)
    const expected = (through: number) =>
      db
        .prepare(
          `SELECT endpoint_id, time / ${24 * HOUR} AS day, coalesce(client_ip_id, 0) AS client_ip_id,
                  version_id, coalesce(node_id, 0) AS node_id, count(*) AS requests, sum(duration_us) AS sum_us
           FROM request WHERE id <= ? GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`,
        )
        .all(through)
    const perIp = db.prepare(
      'SELECT endpoint_id, day, client_ip_id, version_id, node_id, requests, sum_us FROM rollup_ip_day ORDER BY 1, 2, 3, 4, 5',
    )
    const users = userRollupWatermark(db)
    expect(users).toBeLessThan(rollupWatermark(db)) // some requests wait for their users' step
    // Back to what a schema-3 collector left: no rollup_ip_day.
    downgrade(db, 3)
    expect(migrate(db)).toBe(3)
    expect(perIp.all()).toEqual(expected(users))
    db.close()
    // A writer of the new schema counts IPs with the users from there on.
    const store = new MetricsStore(
      path,
      { name: '1.1.0', source: 'option' },
      START,
      undefined,
      'web-2',
    )
    store.write([], [])
    store.close()
    const after = new Database(path)
    rollUpRequests(after, undefined, { users: 'now' })
    expect(after.prepare('SELECT sum(requests) FROM rollup_ip_day').pluck().get()).toBe(
      USER_ROLLUP_ROWS + 6000,
    )
    after.close()
  })

  it('a schema-4 file gets the id spans of its hours, and the partial index on errors in place of (endpoint_id, time)', () => {
    const path = tempDatabase()
    writeFile(path, 3000)
    let db = new Database(path)
    const spans = () =>
      db
        .prepare(
          'SELECT endpoint_id, hour, version_id, node_id, first_id, last_id FROM rollup_hour ORDER BY 1, 2, 3, 4',
        )
        .all()
    const written = spans()
    const indexes = () =>
      db
        .prepare(
          "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'request' AND sql IS NOT NULL",
        )
        .pluck()
        .all()
    downgrade(db, 4)
    db.close()
    db = new Database(path)
    expect(indexes()).toEqual(['request_endpoint_time'])
    expect(migrate(db)).toBe(4)
    // The same spans as the writer keeps: the smallest and largest id of each row's requests.
    expect(spans()).toEqual(written)
    expect(spans()).toEqual(
      db
        .prepare(
          `SELECT endpoint_id, time / ${HOUR} AS hour, version_id, coalesce(node_id, 0) AS node_id,
                  min(id) AS first_id, max(id) AS last_id
           FROM request GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
        )
        .all(),
    )
    expect(indexes()).toEqual(['request_errors'])
    db.close()
  })

  it('rows inserted by other means are counted once by rollUpRequests, and rebuildRollups starts over', () => {
    const path = tempDatabase()
    writeFile(path, 2000)
    const db = new Database(path)
    const before = db.prepare('SELECT sum(requests) FROM rollup_day').pluck()
    expect(before.get()).toBe(2000)
    // As a merge of another node's file would: copy rows in with new ids.
    db.exec(`INSERT INTO request (endpoint_id, time, duration_us, status, version_id, user_group_id, client_ip_id, aborted, node_id)
             SELECT endpoint_id, time + 3600000, duration_us * 2, status, version_id, user_group_id, client_ip_id, aborted, NULL
             FROM request WHERE id <= 300`)
    expect(before.get()).toBe(2000)
    rollUpRequests(db)
    expect(before.get()).toBe(2300)
    rollUpRequests(db, undefined, { users: 'now' }) // nothing new: nothing counted twice
    expect(before.get()).toBe(2300)
    expect(db.prepare('SELECT sum(requests) FROM rollup_user_day').pluck().get()).toBe(2300)
    const incremental = snapshot(db)
    rebuildRollups(db)
    expect(snapshot(db)).toEqual(incremental)
    expect(
      db.prepare('SELECT count(*) FROM rollup_day WHERE node_id = 0').pluck().get(),
    ).toBeGreaterThan(0)
    db.close()
  })

  it('batches counted from memory equal a rebuild: two writers in turns, a batch whose rollups fail, users past their step', () => {
    const path = tempDatabase()
    const next = random(11)
    const endpoints = [endpoint('/a'), endpoint('/b/:id')]
    const a = new MetricsStore(path, { name: '1.0.0', source: 'option' }, START, undefined, 'web-1')
    const b = new MetricsStore(path, { name: '1.0.0', source: 'option' }, START, undefined, 'web-2')
    let time = START
    const batch = (size: number): PendingRequest[] =>
      Array.from({ length: size }, () => ({
        endpoint: endpoints[Math.floor(next() * 2)]!,
        time: (time += Math.floor(next() * 2000)),
        durationUs: Math.round(1000 + next() * 90_000),
        status: next() < 0.05 ? 500 : 200,
        group: `user-${Math.floor(next() * 7)}`,
        ip: time % 3 === 0 ? null : `198.51.100.${time % 5}`,
        aborted: 0 as const,
      }))
    // One writer alone past USER_ROLLUP_ROWS (its users counted from memory), with a batch
    // whose rollups fail (a trigger another connection arms) and that rolls back.
    const other = new Database(path)
    other.exec(`CREATE TRIGGER fail_rollups BEFORE INSERT ON rollup_status
                WHEN (SELECT value FROM meta WHERE key = 'test_fail') = '1'
                BEGIN SELECT RAISE(ABORT, 'rollups failed on purpose'); END`)
    const arm = other.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('test_fail', ?)")
    for (let written = 0; written < 20_000; written += 5000) a.write(batch(5000), [])
    arm.run('1')
    expect(() => a.write(batch(300), [])).toThrow(/rollups failed on purpose/)
    arm.run('0')
    other.close()
    for (let written = 20_000; written < USER_ROLLUP_ROWS + 5000; written += 5000) {
      a.write(batch(5000), [])
    }
    // Two writers in turns, as two processes on one file: each finds the other's rows.
    for (let turn = 0; turn < 6; turn++) (turn % 2 === 0 ? b : a).write(batch(700), [])
    a.close()
    b.close()
    const db = new Database(path)
    rollUpRequests(db, undefined, { users: 'now' })
    expect(db.prepare('SELECT sum(requests) FROM rollup_day').pluck().get()).toBe(
      db.prepare('SELECT count(*) FROM request').pluck().get(),
    )
    const written = snapshot(db)
    rebuildRollups(db)
    expect(snapshot(db)).toEqual(written)
    db.close()
  })

  it('the rollup tables can be made in a TEMP schema, for a reader that must not write', () => {
    const path = tempDatabase()
    writeFile(path, 1000)
    const db = new Database(path, { readonly: true })
    db.exec(rollupTablesSql('temp') + ipRollupTableSql('temp'))
    expect(db.prepare('SELECT count(*) FROM temp.rollup_day').pluck().get()).toBe(0)
    expect(db.prepare('SELECT count(*) FROM temp.rollup_ip_day').pluck().get()).toBe(0)
    db.close()
  })
})
