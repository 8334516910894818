/**
 * The rollup tables' SQL: requests pre-aggregated per endpoint and hour
 * (rollup_hour, rollup_status), per endpoint and day (rollup_day) and per
 * endpoint, day and user (rollup_user_day), so that the desktop app's views
 * read thousands of rows instead of millions. SCHEMA.md describes them.
 *
 * Rollups follow the request table by id: meta 'rollups_through_request'
 * holds the largest request id already counted. The collector's writer calls
 * rollUpRequests() in the transaction that inserts a batch, so the rollups
 * never lag the requests a reader can see; a program that inserts requests
 * some other way (merging files, pulling a server's new rows) calls it too.
 */
import type Database from 'better-sqlite3'
import {
  addToHistogram,
  bucketOf,
  dayOf,
  encodeHistogram,
  hourOf,
  mergeEncodedHistograms,
  NO_ID,
  type SparseHistogram,
} from './schema/rollup.js'

/** The part of a better-sqlite3 connection that rollups use (migrations pass theirs). */
export type RollupDb = Pick<Database.Database, 'prepare' | 'transaction' | 'exec' | 'function'>

/**
 * endpoint_id of the rollup_status rows that count all endpoints together:
 * the views over every endpoint read a tenth of the rows (endpoint ids start at 1).
 */
export const ALL_ENDPOINTS = 0

/** meta key: requests with an id up to this one are counted in the rollups. */
export const ROLLUP_WATERMARK_KEY = 'rollups_through_request'
/** meta key: requests with an id up to this one are counted in rollup_user_day. */
export const USER_ROLLUP_WATERMARK_KEY = 'user_rollups_through_request'
/** Requests the writer lets wait before it counts them per user (at most this many read raw). */
export const USER_ROLLUP_ROWS = 50_000

/** Requests read and aggregated at a time, so that a backfill of millions stays in bounded memory. */
const CHUNK_ROWS = 200_000

/** Counts and durations of the requests of one rollup row. */
interface Aggregate {
  key: number[]
  requests: number
  errors4xx: number
  errors5xx: number
  sumUs: number
  minUs: number
  maxUs: number
  histogram: SparseHistogram
}

function aggregate(key: number[]): Aggregate {
  return {
    key,
    requests: 0,
    errors4xx: 0,
    errors5xx: 0,
    sumUs: 0,
    minUs: Number.POSITIVE_INFINITY,
    maxUs: Number.NEGATIVE_INFINITY,
    histogram: new Map(),
  }
}

function addRequest(into: Aggregate, durationUs: number, status: number, bucket: number): void {
  into.requests++
  if (status >= 400 && status < 500) into.errors4xx++
  else if (status >= 500 && status < 600) into.errors5xx++
  into.sumUs += durationUs
  if (durationUs < into.minUs) into.minUs = durationUs
  if (durationUs > into.maxUs) into.maxUs = durationUs
  addToHistogram(into.histogram, bucket)
}

function addAggregate(into: Aggregate, other: Aggregate): void {
  into.requests += other.requests
  into.errors4xx += other.errors4xx
  into.errors5xx += other.errors5xx
  into.sumUs += other.sumUs
  into.minUs = Math.min(into.minUs, other.minUs)
  into.maxUs = Math.max(into.maxUs, other.maxUs)
  for (const [bucket, count] of other.histogram) addToHistogram(into.histogram, bucket, count)
}

/**
 * Map keys of the aggregates: one number packing the key's parts when each
 * fits its bits (the common case: no string and no array per request, and
 * this runs for every request the writer stores), else the parts' text.
 * Parts are non-negative integers; the first takes the bits left of 53.
 */
type MapKey = number | string

function key4(
  a: number,
  b: number,
  bBits: number,
  c: number,
  cBits: number,
  d: number,
  dBits: number,
): MapKey {
  const bMax = 2 ** bBits
  const cMax = 2 ** cBits
  const dMax = 2 ** dBits
  if (
    a >= 0 &&
    a < 2 ** (53 - bBits - cBits - dBits) &&
    b >= 0 &&
    b < bMax &&
    c >= 0 &&
    c < cMax &&
    d >= 0 &&
    d < dMax
  ) {
    return ((a * bMax + b) * cMax + c) * dMax + d
  }
  return `${a},${b},${c},${d}`
}

/** (hour or day, endpoint, version, node): 14 bits of endpoint id, 10 of version, 8 of node */
const timeKey = (time: number, endpointId: number, versionId: number, node: number): MapKey =>
  key4(time, endpointId, 14, versionId, 10, node, 8)

/** (day, endpoint, user, version, node): the user and version share 30 bits */
const userKey = (
  day: number,
  endpointId: number,
  user: number,
  versionId: number,
  node: number,
): MapKey =>
  user < 2 ** 20 && versionId < 2 ** 10
    ? key4(day, endpointId, 14, user * 2 ** 10 + versionId, 30, node, 8)
    : `${day},${endpointId},${user},${versionId},${node},u`

/** The aggregate of a key, made on first use (its parts made only then). */
function lookup(map: Map<MapKey, Aggregate>, mapKey: MapKey, key: () => number[]): Aggregate {
  let found = map.get(mapKey)
  if (found === undefined) map.set(mapKey, (found = aggregate(key())))
  return found
}

/** Adds one request to the per-status counts of an endpoint (or ALL_ENDPOINTS) and hour. */
function countStatus(
  statuses: Map<MapKey, { key: number[]; requests: number }>,
  endpoint: number,
  hour: number,
  node: number,
  status: number,
): void {
  const mapKey = key4(hour, endpoint, 14, node, 8, status, 10)
  const counted = statuses.get(mapKey)
  if (counted === undefined)
    statuses.set(mapKey, { key: [endpoint, hour, node, status], requests: 1 })
  else counted.requests++
}

/** A request as the rollups read it: from the table, or as the writer just inserted it. */
export type RollupRow = [
  id: number,
  endpointId: number,
  time: number,
  durationUs: number,
  status: number,
  versionId: number,
  nodeId: number | null,
  userGroupId: number | null,
]
type Row = RollupRow

interface Statements {
  select: Database.Statement
  watermark: Database.Statement
  maxId: Database.Statement
  setWatermark: Database.Statement
  /** one upsert per rollup table with histograms: rollup_hour, rollup_day, rollup_user_day */
  upserts: Array<{ statement: Database.Statement; errors: boolean }>
  status: Database.Statement
}

/** SQL function that adds two encoded histograms (registered on each connection that writes rollups). */
const MERGE_FUNCTION = 'routemeter_merge_histograms'

const cache = new WeakMap<object, Statements>()

/**
 * Per-user aggregates of the requests this connection inserted above the
 * user watermark, through request id `through`, not written yet (the writer
 * writes them every USER_ROLLUP_ROWS requests, one upsert per key). Only
 * trusted while `through` equals the file's rollup watermark: a rolled-back
 * transaction or another process's rows make it stale, and the requests are
 * then read back from the table instead.
 */
const pendingUsersOf = new WeakMap<object, { through: number; users: Map<MapKey, Aggregate> }>()

function statementsOf(db: RollupDb): Statements {
  let statements = cache.get(db)
  if (statements !== undefined) return statements
  db.function(MERGE_FUNCTION, { deterministic: true }, (a, b) =>
    mergeEncodedHistograms(a as Uint8Array, b as Uint8Array),
  )
  // Adds a chunk's aggregate to the row of its key: one statement per key.
  const upsert = (table: string, columns: string[], errors: boolean) => {
    const counts = ['requests', ...(errors ? ['errors_4xx', 'errors_5xx'] : []), 'sum_us']
    const values = [...columns, ...counts, 'min_us', 'max_us', 'histogram']
    return {
      errors,
      statement: db.prepare(
        `INSERT INTO ${table} (${values.join(', ')}) VALUES (${values.map(() => '?').join(', ')})
         ON CONFLICT DO UPDATE SET
           ${counts.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')},
           min_us = min(min_us, excluded.min_us),
           max_us = max(max_us, excluded.max_us),
           histogram = ${MERGE_FUNCTION}(histogram, excluded.histogram)`,
      ),
    }
  }
  statements = {
    select: db
      .prepare(
        `SELECT id, endpoint_id, time, duration_us, status, version_id, node_id, user_group_id
         FROM request WHERE id > ? ORDER BY id LIMIT ?`,
      )
      .raw(),
    watermark: db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
    maxId: db.prepare('SELECT max(id) FROM request').pluck(),
    setWatermark: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
    upserts: [
      upsert('rollup_hour', ['endpoint_id', 'hour', 'version_id', 'node_id'], true),
      upsert('rollup_day', ['endpoint_id', 'day', 'version_id', 'node_id'], true),
      upsert(
        'rollup_user_day',
        ['endpoint_id', 'day', 'user_group_id', 'version_id', 'node_id'],
        false,
      ),
    ],
    status: db.prepare(
      `INSERT INTO rollup_status (endpoint_id, hour, node_id, status, requests) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT DO UPDATE SET requests = requests + excluded.requests`,
    ),
  }
  cache.set(db, statements)
  return statements
}

/** The largest request id already counted in the rollups (0: none). */
export function rollupWatermark(db: RollupDb): number {
  const value = statementsOf(db).watermark.get(ROLLUP_WATERMARK_KEY) as string | undefined
  return value === undefined ? 0 : Number(value)
}

/** Adds one chunk's aggregates to the rollup tables. */
function writeAggregates(
  statements: Statements,
  perTable: Array<Map<MapKey, Aggregate>>,
  statuses: Map<MapKey, { key: number[]; requests: number }>,
): void {
  statements.upserts.forEach(({ statement, errors }, t) => {
    for (const agg of perTable[t]!.values()) {
      statement.run(
        ...agg.key,
        agg.requests,
        ...(errors ? [agg.errors4xx, agg.errors5xx] : []),
        agg.sumUs,
        agg.minUs,
        agg.maxUs,
        encodeHistogram(agg.histogram),
      )
    }
  })
  for (const { key, requests } of statuses.values()) statements.status.run(...key, requests)
}

/** Which rollups a pass counts: all, all but users (the writer's every batch), or users only. */
type Pass = 'all' | 'main' | 'users'

/**
 * Counts a chunk of requests and writes its aggregates. With `pendingUsers`,
 * the per-user aggregates are added to that map (written later) instead.
 */
function rollUpChunk(
  statements: Statements,
  rows: readonly Row[],
  pass: Pass,
  pendingUsers?: Map<MapKey, Aggregate>,
): void {
  const hours = new Map<MapKey, Aggregate>()
  const users = pendingUsers ?? new Map<MapKey, Aggregate>()
  const statuses = new Map<MapKey, { key: number[]; requests: number }>()
  const main = pass !== 'users'
  const perUser = pass !== 'main' || pendingUsers !== undefined
  for (const [, endpointId, time, durationUs, status, versionId, nodeId, userGroupId] of rows) {
    const node = nodeId ?? NO_ID
    const hour = hourOf(time)
    const bucket = bucketOf(durationUs)
    if (perUser) {
      const day = dayOf(time)
      const user = userGroupId ?? NO_ID
      addRequest(
        lookup(users, userKey(day, endpointId, user, versionId, node), () => [
          endpointId,
          day,
          user,
          versionId,
          node,
        ]),
        durationUs,
        status,
        bucket,
      )
    }
    if (!main) continue
    addRequest(
      lookup(hours, timeKey(hour, endpointId, versionId, node), () => [
        endpointId,
        hour,
        versionId,
        node,
      ]),
      durationUs,
      status,
      bucket,
    )
    // Each request counts for its endpoint and for all endpoints (ALL_ENDPOINTS).
    countStatus(statuses, endpointId, hour, node, status)
    countStatus(statuses, ALL_ENDPOINTS, hour, node, status)
  }
  // Days are sums of hours (UTC: 24 whole hours a day).
  const days = new Map<MapKey, Aggregate>()
  for (const agg of hours.values()) {
    const [endpointId, hour, versionId, node] = agg.key as [number, number, number, number]
    const day = Math.floor(hour / 24)
    addAggregate(
      lookup(days, timeKey(day, endpointId, versionId, node), () => [
        endpointId,
        day,
        versionId,
        node,
      ]),
      agg,
    )
  }
  writeAggregates(
    statements,
    [hours, days, pendingUsers === undefined ? users : new Map()],
    statuses,
  )
}

/** Counts the requests above `afterId` in one pass; returns the largest id read. */
function rollUpPass(db: RollupDb, afterId: number, pass: Pass): number {
  const statements = statementsOf(db)
  let last = afterId
  for (;;) {
    const rows = statements.select.all(last, CHUNK_ROWS) as Row[]
    if (rows.length === 0) break
    rollUpChunk(statements, rows, pass)
    last = rows[rows.length - 1]![0]
    if (rows.length < CHUNK_ROWS) break
  }
  return last
}

/**
 * Counts the requests with an id above `afterId` into every rollup table the
 * connection resolves (a TEMP copy shadows the file's), without watermarks.
 * Returns the largest id counted, or `afterId` when there was none.
 */
export function rollUpAfter(db: RollupDb, afterId: number): number {
  return rollUpPass(db, afterId, 'all')
}

/**
 * The largest request id counted in rollup_user_day. The writer counts users
 * once USER_ROLLUP_ROWS requests wait (one upsert per endpoint and user is
 * what costs most); readers take the requests above it from the table.
 * Files whose rollups predate this key counted users with the rest.
 */
export function userRollupWatermark(db: RollupDb): number {
  const value = statementsOf(db).watermark.get(USER_ROLLUP_WATERMARK_KEY) as string | undefined
  return value === undefined ? rollupWatermark(db) : Number(value)
}

/**
 * Counts the requests with an id above `afterId` (default: those not counted
 * yet) into the rollups, and moves the watermarks past them. Users are
 * counted when USER_ROLLUP_ROWS requests wait for them, or now with
 * `{ users: 'now' }`. Runs in a transaction of its own, or inside the
 * caller's. Returns the largest request id now counted. Counting requests
 * twice (an `afterId` below a watermark) doubles them: after rewriting
 * requests, use rebuildRollups().
 */
export function rollUpRequests(
  db: RollupDb,
  afterId?: number,
  options: {
    users?: 'due' | 'now'
    /**
     * The rows the caller has just inserted, in id order with consecutive ids:
     * when they are exactly the requests above the watermark (no other process
     * wrote in between), they are counted from memory instead of read back,
     * which is most of the writer's cost of keeping rollups.
     */
    inserted?: readonly RollupRow[]
  } = {},
): number {
  return db.transaction(() => {
    const statements = statementsOf(db)
    const watermark = rollupWatermark(db)
    const usersFrom = afterId ?? userRollupWatermark(db)
    const inserted = options.inserted
    const first = inserted?.[0]
    let last: number
    if (
      afterId === undefined &&
      inserted !== undefined &&
      first !== undefined &&
      first[0] === watermark + 1 &&
      inserted[inserted.length - 1]![0] === watermark + inserted.length &&
      statements.maxId.get() === watermark + inserted.length
    ) {
      last = watermark + inserted.length
      // Users too, from memory, when every request above the user watermark is in `pending`.
      let pending = pendingUsersOf.get(db)
      if (pending === undefined || pending.through !== watermark) {
        pending = usersFrom === watermark ? { through: watermark, users: new Map() } : undefined
      }
      // Forgotten until counted: a failure halfway must not leave half a batch in `pending`.
      pendingUsersOf.delete(db)
      rollUpChunk(statements, inserted as Row[], 'main', pending?.users)
      if (pending !== undefined) {
        pending.through = last
        pendingUsersOf.set(db, pending)
      }
    } else {
      pendingUsersOf.delete(db)
      last = rollUpPass(db, afterId ?? watermark, 'main')
    }
    if (last > watermark) statements.setWatermark.run(ROLLUP_WATERMARK_KEY, String(last))
    const through = Math.max(last, watermark)
    if (options.users === 'now' || through - usersFrom >= USER_ROLLUP_ROWS) {
      const pending = pendingUsersOf.get(db)
      pendingUsersOf.delete(db)
      let usersLast: number
      if (pending !== undefined && pending.through === through) {
        writeAggregates(statements, [new Map(), new Map(), pending.users], new Map())
        usersLast = through
      } else usersLast = rollUpPass(db, usersFrom, 'users')
      statements.setWatermark.run(USER_ROLLUP_WATERMARK_KEY, String(Math.max(usersLast, usersFrom)))
    }
    return through
  })()
}

/** Empties the rollups and counts every request again; returns the largest request id counted. */
export function rebuildRollups(db: RollupDb): number {
  return db.transaction(() => {
    db.exec(`
      DELETE FROM rollup_hour;
      DELETE FROM rollup_day;
      DELETE FROM rollup_user_day;
      DELETE FROM rollup_status;
    `)
    statementsOf(db).setWatermark.run(ROLLUP_WATERMARK_KEY, '0')
    statementsOf(db).setWatermark.run(USER_ROLLUP_WATERMARK_KEY, '0')
    return rollUpRequests(db, 0, { users: 'now' })
  })()
}
