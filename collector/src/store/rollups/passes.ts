/**
 * One file: the passes share the watermarks and the pending per-client counts; split, each would need the others.
 *
 * The roll-up passes: which requests are counted (the watermarks), counting them
 * from memory or reading them back, and checking what another program wrote.
 */
import { bucketOf, dayOf, hourOf } from '../../schema/rollup.js'
import {
  ALL_ENDPOINTS,
  ROLLUP_WATERMARK_KEY,
  RollupDb,
  USER_ROLLUP_ROWS,
  USER_ROLLUP_WATERMARK_KEY,
} from './common.js'
import { Aggregate, AggregateList } from './aggregate-list.js'
import {
  aggregate,
  ClientAggregates,
  Clients,
  HourAggregate,
  TimeAggregates,
} from './aggregates.js'
import { RollupColumns, Row } from './columns.js'
import {
  CountedChunk,
  countedOf,
  MERGE_FUNCTION,
  forgetRollupStatements,
  pendingClientsOf,
  RollupShape,
  Statements,
  statementsOf,
  writeCounted,
} from './statements.js'

/** Requests read and aggregated at a time, so that a backfill of millions stays in bounded memory. */
export const CHUNK_ROWS = 200_000

/** The largest request id already counted in the rollups (0: none). */
export function rollupWatermark(db: RollupDb): number {
  const value = statementsOf(db).watermark.get(ROLLUP_WATERMARK_KEY) as string | undefined
  return value === undefined ? 0 : Number(value)
}

/**
 * Which rollups a pass counts: all; all but the clients' (users and IPs: the
 * writer's every batch); the clients' only; IPs only (migration 0004).
 */
export type Pass = 'all' | 'main' | 'clients' | 'ips'

/** Empty per-client aggregates for a pass: users unless IPs only, IPs where the file has them. */
export function clientsFor(shape: RollupShape, pass: Pass): Clients {
  const counted = pass !== 'main'
  return {
    users: counted && pass !== 'ips' ? new ClientAggregates() : undefined,
    ips: counted && shape.ips ? new ClientAggregates() : undefined,
  }
}

/**
 * Counts each request of `rows` into its hour (`byHour`), user and IP
 * aggregates. A function of its own: as part of countChunk, V8 compiled the
 * loop before the code after it had run and bailed out of it on every later
 * chunk (--trace-deopt), so the loop ran unoptimized.
 */
export function countRows(
  rows: RollupColumns,
  byHour:
    { hours: TimeAggregates<HourAggregate>; hourList: AggregateList<HourAggregate> } | undefined,
  users: ClientAggregates | undefined,
  ips: ClientAggregates | undefined,
): void {
  const { endpointId: endpoints, time: times, durationUs: durations, status: statusCodes } = rows
  const hours = byHour?.hours
  const hourList = byHour?.hourList
  for (let i = 0; i < rows.count; i++) {
    const endpointId = endpoints[i]!
    const time = times[i]!
    const durationUs = durations[i]!
    const status = statusCodes[i]!
    const versionId = rows.versionId[i]!
    const node = rows.nodeId[i]!
    const bucket = bucketOf(durationUs)
    if (users !== undefined || ips !== undefined) {
      const day = dayOf(time)
      users?.count(
        day,
        endpointId,
        rows.userGroupId[i]!,
        versionId,
        node,
        durationUs,
        status,
        bucket,
      )
      ips?.count(day, endpointId, rows.clientIpId[i]!, versionId, node, durationUs, status, bucket)
    }
    if (hours === undefined || hourList === undefined) continue
    const hour = hours.of(hourOf(time), endpointId, versionId, node)
    hourList.count(hour, durationUs, status, bucket)
    // Id 0: a request sampled away, counted but not stored (no id to find it by).
    const id = rows.id[i]!
    if (id > 0) {
      if (id < hour.firstId) hour.firstId = id
      if (id > hour.lastId) hour.lastId = id
    }
    const statuses = hour.statuses
    let s = 0
    while (s < statuses.length && statuses[s] !== status) s += 2
    if (s < statuses.length) statuses[s + 1]!++
    else statuses.push(status, 1)
  }
}

/**
 * Counts a chunk of requests. With `pending`, the per-user and per-IP
 * aggregates are added there (written later) instead of returned.
 */
export function countChunk(
  shape: RollupShape,
  rows: RollupColumns,
  pass: Pass,
  pending?: Clients,
): CountedChunk {
  const hourList = new AggregateList<HourAggregate>()
  // Every field written out, not `...aggregate(key)` and three more: objects made by
  // the spread were twice as slow to count into.
  const hours = new TimeAggregates<HourAggregate>((key) =>
    hourList.add({
      key,
      index: -1,
      requests: 0,
      errors4xx: 0,
      errors5xx: 0,
      sumUs: 0,
      minUs: Number.POSITIVE_INFINITY,
      maxUs: Number.NEGATIVE_INFINITY,
      statuses: [],
      firstId: Number.POSITIVE_INFINITY,
      lastId: Number.NEGATIVE_INFINITY,
    }),
  )
  const { users, ips } = pending ?? clientsFor(shape, pass)
  const main = pass === 'all' || pass === 'main'
  countRows(rows, main ? { hours, hourList } : undefined, users, ips)
  // Days are sums of hours (UTC: 24 whole hours a day); statuses are counted
  // per endpoint and for all endpoints (ALL_ENDPOINTS), over versions.
  const dayList = new AggregateList<Aggregate>()
  const days = new TimeAggregates<Aggregate>((key) => dayList.add(aggregate(key)))
  const statuses = new Map<string, { key: number[]; requests: number }>()
  const countStatus = (
    endpointId: number,
    hour: number,
    node: number,
    status: number,
    n: number,
  ) => {
    const mapKey = `${endpointId},${hour},${node},${status}`
    const counted = statuses.get(mapKey)
    if (counted === undefined)
      statuses.set(mapKey, { key: [endpointId, hour, node, status], requests: n })
    else counted.requests += n
  }
  const dayOfHour = hourList.items.map((agg) => {
    const [endpointId, hour, versionId, node] = agg.key as [number, number, number, number]
    for (let s = 0; s < agg.statuses.length; s += 2) {
      const status = agg.statuses[s]!
      const n = agg.statuses[s + 1]!
      countStatus(endpointId, hour, node, status, n)
      countStatus(ALL_ENDPOINTS, hour, node, status, n)
    }
    return days.of(Math.floor(hour / 24), endpointId, versionId, node)
  })
  dayList.addList(hourList, dayOfHour)
  const counted = pending === undefined
  return countedOf(
    shape,
    [hourList, dayList, counted ? users?.list : undefined, counted ? ips?.list : undefined],
    statuses.values(),
  )
}

/** Counts a chunk of requests and writes its aggregates (see countChunk). */
export function rollUpChunk(
  statements: Statements,
  rows: RollupColumns,
  pass: Pass,
  pending?: Clients,
): void {
  writeCounted(statements, countChunk(statements, rows, pass, pending))
}

/** The pending per-client aggregates as rows (rollup_user_day, rollup_ip_day). */
export function countedClients(shape: RollupShape, clients: Clients): CountedChunk {
  return countedOf(shape, [undefined, undefined, clients.users?.list, clients.ips?.list], [])
}

/**
 * Counts the requests with afterId < id <= through in one pass; returns the
 * largest id read.
 */
export function rollUpPass(
  db: RollupDb,
  afterId: number,
  pass: Pass,
  through = Number.POSITIVE_INFINITY,
): number {
  const statements = statementsOf(db)
  let last = afterId
  let invalid = 0
  const columns = new RollupColumns()
  while (last < through) {
    const rows = statements.select.all(last, CHUNK_ROWS) as Row[]
    columns.clear()
    for (const [id, endpointId, time, durationUs, status, versionId, nodeId, user, ip] of rows) {
      if (id > through) break
      last = id
      // Rows another program wrote may hold anything STRICT allows: one must not stop the rollups.
      if (!isCountable(endpointId, time, durationUs, status, versionId)) {
        invalid++
        continue
      }
      columns.push(id, endpointId, time, durationUs, status, versionId, nodeId, user, ip)
    }
    if (columns.count > 0) rollUpChunk(statements, columns, pass)
    if (rows.length < CHUNK_ROWS) break
  }
  // Counted once, by the pass that counts the hours (the clients' pass reads the same rows again).
  if (invalid > 0 && pass !== 'clients' && pass !== 'ips') {
    invalidRowsOf.set(db, (invalidRowsOf.get(db) ?? 0) + invalid)
  }
  return last
}

/** Longest duration counted, in µs (about 12.7 days): sums of such stay exact integers. */
export const MAX_DURATION_US = 2 ** 40

/** Whether a request read back from the file has values a collector could have written. */
export function isCountable(
  endpointId: unknown,
  time: unknown,
  durationUs: unknown,
  status: unknown,
  versionId: unknown,
): boolean {
  return (
    isId(endpointId) &&
    isId(versionId) &&
    Number.isSafeInteger(time) &&
    (time as number) >= 0 &&
    Number.isSafeInteger(durationUs) &&
    (durationUs as number) >= 0 &&
    (durationUs as number) <= MAX_DURATION_US &&
    Number.isInteger(status) &&
    (status as number) >= 0 &&
    (status as number) <= 999
  )
}

export function isId(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) < 2 ** 31
}

/** Request rows left out of the rollups for values out of range, per connection. */
export const invalidRowsOf = new WeakMap<object, number>()

/**
 * How many request rows this connection has left out of the rollups since
 * it was opened, because their values are out of range (written by another
 * program: a negative or huge duration, a NULL after a schema edit, ...).
 */
export function invalidRequestRows(db: RollupDb): number {
  return invalidRowsOf.get(db) ?? 0
}

/**
 * Counts the requests with an id above `afterId` into every rollup table the
 * connection resolves (a TEMP copy shadows the file's), without watermarks.
 * Returns the largest id counted, or `afterId` when there was none.
 */
export function rollUpAfter(
  db: RollupDb,
  afterId: number,
  /** the last id to count (default: all); `clients`: count only the per-user and per-IP tables */
  options: { through?: number; clients?: boolean } = {},
): number {
  return rollUpPass(db, afterId, options.clients === true ? 'clients' : 'all', options.through)
}

/**
 * The name of the SQL function that adds two encoded histograms, registered
 * on `db` (programs that merge rollup rows in SQL use it in their upserts).
 */
export function histogramMergeFunction(db: RollupDb): string {
  statementsOf(db)
  return MERGE_FUNCTION
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
     * The rows the caller has just inserted, in id order: when they are
     * exactly the requests above the watermark (no other process wrote in
     * between), they are counted from memory instead of read back, which is
     * most of the writer's cost of keeping rollups.
     */
    inserted?: RollupColumns
  } = {},
): number {
  return db.transaction(() => {
    const statements = statementsOf(db)
    const watermark = rollupWatermark(db)
    const usersFrom = afterId ?? userRollupWatermark(db)
    const inserted = options.inserted
    let last: number
    if (
      afterId === undefined &&
      inserted !== undefined &&
      inserted.count > 0 &&
      inserted.id[0] === watermark + 1 &&
      inserted.id[inserted.count - 1] === watermark + inserted.count &&
      statements.maxId.get() === watermark + inserted.count
    ) {
      last = watermark + inserted.count
      // Users and IPs too, from memory, when every request above their watermark is in `pending`.
      let pending = pendingClientsOf.get(db)
      if (pending === undefined || pending.through !== watermark) {
        pending =
          usersFrom === watermark
            ? { through: watermark, clients: clientsFor(statements, 'clients') }
            : undefined
      }
      // Forgotten until counted: a failure halfway must not leave half a batch in `pending`.
      pendingClientsOf.delete(db)
      rollUpChunk(statements, inserted, 'main', pending?.clients)
      if (pending !== undefined) {
        pending.through = last
        pendingClientsOf.set(db, pending)
      }
    } else {
      pendingClientsOf.delete(db)
      last = rollUpPass(db, afterId ?? watermark, 'main')
    }
    if (last > watermark) statements.setWatermark.run(ROLLUP_WATERMARK_KEY, String(last))
    const through = Math.max(last, watermark)
    if (options.users === 'now' || through - usersFrom >= USER_ROLLUP_ROWS) {
      const pending = pendingClientsOf.get(db)
      pendingClientsOf.delete(db)
      let usersLast: number
      if (pending !== undefined && pending.through === through) {
        writeCounted(statements, countedClients(statements, pending.clients))
        usersLast = through
      } else usersLast = rollUpPass(db, usersFrom, 'clients')
      statements.setWatermark.run(USER_ROLLUP_WATERMARK_KEY, String(Math.max(usersLast, usersFrom)))
    }
    return through
  })()
}

/**
 * Writes the per-user and per-IP aggregates this connection holds in memory
 * (the requests it inserted since the clients' watermark), if they are still
 * exactly the requests above it. A writer that closes calls it: the next
 * connection (the app restarted, a new release) then counts its own from
 * memory instead of reading up to USER_ROLLUP_ROWS requests back. Returns
 * whether they were written; when not, they are read back when next due.
 */
export function writePendingClientRollups(db: RollupDb): boolean {
  const pending = pendingClientsOf.get(db)
  if (pending === undefined) return false
  return db.transaction(() => {
    const statements = statementsOf(db)
    pendingClientsOf.delete(db)
    if (pending.through !== rollupWatermark(db) || userRollupWatermark(db) >= pending.through)
      return false
    writeCounted(statements, countedClients(statements, pending.clients))
    statements.setWatermark.run(USER_ROLLUP_WATERMARK_KEY, String(pending.through))
    return true
  })()
}

/**
 * Counts requests that are not stored (sampled away: their ids are 0) into
 * every rollup, users and IPs included, in the caller's transaction: no
 * watermark covers them, as no reader will find them in the table.
 */
export function rollUpUnstored(db: RollupDb, rows: RollupColumns): void {
  if (rows.count > 0) rollUpChunk(statementsOf(db), rows, 'all')
}

/**
 * Migration 0004: counts per IP the requests that the users' rollups already
 * count (the two share the users' watermark from then on).
 */
export function backfillIpRollups(db: RollupDb): void {
  forgetRollupStatements(db)
  rollUpPass(db, 0, 'ips', userRollupWatermark(db))
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
    if (statementsOf(db).ips) db.exec('DELETE FROM rollup_ip_day')
    statementsOf(db).setWatermark.run(ROLLUP_WATERMARK_KEY, '0')
    statementsOf(db).setWatermark.run(USER_ROLLUP_WATERMARK_KEY, '0')
    return rollUpRequests(db, 0, { users: 'now' })
  })()
}
