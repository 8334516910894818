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
  BUCKET_COUNT,
  bucketOf,
  dayOf,
  putSortedBuckets,
  hourOf,
  mergeEncodedHistograms,
  NO_ID,
  putBucketCounts,
} from '../schema/rollup.js'

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
/**
 * Requests the writer lets wait before it counts them per user and IP (at
 * most this many read raw by the per-client views): each step's upserts are
 * most of the writer's rollup work, so fewer, larger steps.
 */
export const USER_ROLLUP_ROWS = 200_000

/** Requests read and aggregated at a time, so that a backfill of millions stays in bounded memory. */
const CHUNK_ROWS = 200_000

/** Counts and durations of the requests of one rollup row. */
interface Aggregate {
  key: number[]
  /** its place in its AggregateList, under which the buckets of its requests are filed */
  index: number
  requests: number
  errors4xx: number
  errors5xx: number
  sumUs: number
  minUs: number
  maxUs: number
}

/** Bits of a bucket number in an AggregateList's entries. */
const BUCKET_BITS = 10
const BUCKET_SPAN = 2 ** BUCKET_BITS
if (BUCKET_COUNT > BUCKET_SPAN) throw new Error('routemeter: bucket numbers need more bits')
/** Aggregates one list can hold: its entries are 32 bits. */
const MAX_AGGREGATES = 2 ** (32 - BUCKET_BITS)

/**
 * Aggregates, and the duration bucket of each request they count: one list of
 * entries for all of them, each (aggregate index, bucket) in 32 bits, grouped
 * by aggregate when encoded (cheaper than a typed array per aggregate).
 */
class AggregateList<T extends Aggregate> {
  readonly items: T[] = []
  private entries = new Uint32Array(1024)
  private length = 0

  add(agg: T): T {
    if (this.items.length >= MAX_AGGREGATES) {
      throw new RangeError(`routemeter: more than ${MAX_AGGREGATES} rollup rows in one count`)
    }
    agg.index = this.items.length
    this.items.push(agg)
    return agg
  }

  /** Counts a request into one of this list's aggregates. */
  count(into: T, durationUs: number, status: number, bucket: number): void {
    into.requests++
    if (status >= 400 && status < 500) into.errors4xx++
    else if (status >= 500 && status < 600) into.errors5xx++
    into.sumUs += durationUs
    if (durationUs < into.minUs) into.minUs = durationUs
    if (durationUs > into.maxUs) into.maxUs = durationUs
    this.push(into.index * BUCKET_SPAN + bucket)
  }

  /**
   * Adds the aggregates of another list into this one's: `into[i]` takes the
   * counts and buckets of `other.items[i]`.
   */
  addList(other: AggregateList<Aggregate>, into: readonly T[]): void {
    other.items.forEach((agg, i) => {
      const target = into[i]!
      target.requests += agg.requests
      target.errors4xx += agg.errors4xx
      target.errors5xx += agg.errors5xx
      target.sumUs += agg.sumUs
      target.minUs = Math.min(target.minUs, agg.minUs)
      target.maxUs = Math.max(target.maxUs, agg.maxUs)
    })
    for (let e = 0; e < other.length; e++) {
      const entry = other.entries[e]!
      this.push(into[entry >>> BUCKET_BITS]!.index * BUCKET_SPAN + (entry & (BUCKET_SPAN - 1)))
    }
  }

  /** The encoded histogram of each aggregate, in the order of `items`. */
  histograms(): Buffer[] {
    return histogramsOfEntries(this.entries, this.length, this.items.length)
  }

  private push(entry: number): void {
    if (this.length === this.entries.length) {
      const grown = new Uint32Array(this.length * 2)
      grown.set(this.entries)
      this.entries = grown
    }
    this.entries[this.length++] = entry
  }
}

/**
 * Dense counting (a count per aggregate and bucket between the smallest and
 * the largest bucket of the entries, then a scan of those) is used while it
 * scans at most this many buckets a request: a batch's hours and days, and
 * the per-client rows of most traffic, whose durations span a few octaves.
 */
const DENSE_BUCKETS_PER_ENTRY = 8

/**
 * The encoded histogram of each of `aggregates` aggregates, from `entries`
 * (aggregate index * BUCKET_SPAN + bucket: one a request, in any order).
 * `dense` chooses the method (tests compare both); they give the same bytes.
 * Each loop over the entries is in a function of its own: with several in
 * one, V8 compiled the first that got hot (on-stack replacement) and bailed
 * out at the next, which had not run yet, on every call (--trace-deopt:
 * "insufficient type feedback"), so the rest ran unoptimized.
 */
export function histogramsOfEntries(
  entries: Uint32Array,
  length: number,
  aggregates: number,
  dense?: boolean,
): Buffer[] {
  const n = aggregates
  const range = bucketRange(entries, length)
  const span = length === 0 ? 0 : range.high - range.low + 1
  // At most 7 bytes a request (a bucket's gap and count), and room for the last check;
  // then copied to a buffer of their size (the one that crosses to a writer thread).
  const room = Buffer.allocUnsafeSlow(7 * length + 12)
  const ends = new Int32Array(n)
  const at =
    (dense ?? n * span <= DENSE_BUCKETS_PER_ENTRY * length)
      ? putDenseHistograms(room, ends, entries, length, range.low, span)
      : putSortedHistograms(room, ends, entries, length)
  const encoded = Buffer.allocUnsafeSlow(at)
  room.copy(encoded, 0, 0, at)
  const histograms = new Array<Buffer>(n)
  for (let a = 0; a < n; a++) histograms[a] = encoded.subarray(a === 0 ? 0 : ends[a - 1], ends[a])
  return histograms
}

/** The smallest and largest bucket of the entries. */
function bucketRange(entries: Uint32Array, length: number): { low: number; high: number } {
  const mask = BUCKET_SPAN - 1
  let low = mask
  let high = 0
  for (let e = 0; e < length; e++) {
    const bucket = entries[e]! & mask
    if (bucket < low) low = bucket
    if (bucket > high) high = bucket
  }
  return { low, high }
}

/**
 * Counts each aggregate's buckets [low, low + span) densely, then encodes
 * each (`ends[a]`: where aggregate a's bytes end).
 */
function putDenseHistograms(
  room: Buffer,
  ends: Int32Array,
  entries: Uint32Array,
  length: number,
  low: number,
  span: number,
): number {
  const counts = new Uint32Array(ends.length * span)
  countDense(entries, length, low, span, counts)
  let at = 0
  for (let a = 0; a < ends.length; a++) {
    at = putBucketCounts(room, at, counts, a * span, (a + 1) * span, low)
    ends[a] = at
  }
  return at
}

function countDense(
  entries: Uint32Array,
  length: number,
  low: number,
  span: number,
  counts: Uint32Array,
): void {
  const mask = BUCKET_SPAN - 1
  for (let e = 0; e < length; e++) {
    const entry = entries[e]!
    counts[(entry >>> BUCKET_BITS) * span + (entry & mask) - low]!++
  }
}

/**
 * Sorts the entries by (aggregate, bucket) with two counting sorts (by
 * bucket, then stably by aggregate: O(entries), no sort per aggregate), then
 * encodes each aggregate's run.
 */
function putSortedHistograms(
  room: Buffer,
  ends: Int32Array,
  entries: Uint32Array,
  length: number,
): number {
  const n = ends.length
  const bucketMask = BUCKET_SPAN - 1
  const aggregateMask = MAX_AGGREGATES - 1
  const byBucket = new Int32Array(BUCKET_SPAN + 1)
  countKeys(entries, length, 0, bucketMask, byBucket)
  toStarts(byBucket)
  const inBucketOrder = new Uint32Array(length)
  scatterByKey(entries, length, 0, bucketMask, byBucket, inBucketOrder, 0xffffffff)
  const starts = new Int32Array(n + 1)
  countKeys(inBucketOrder, length, BUCKET_BITS, aggregateMask, starts)
  toStarts(starts)
  const next = starts.slice(0, n)
  const buckets = new Uint32Array(length)
  scatterByKey(inBucketOrder, length, BUCKET_BITS, aggregateMask, next, buckets, bucketMask)
  let at = 0
  for (let a = 0; a < n; a++) {
    at = putSortedBuckets(room, at, buckets, starts[a]!, starts[a + 1]!)
    ends[a] = at
  }
  return at
}

/** Counts the entries by key ((entry >>> shift) & mask) into `counts[key + 1]`. */
function countKeys(
  entries: Uint32Array,
  length: number,
  shift: number,
  mask: number,
  counts: Int32Array,
): void {
  for (let e = 0; e < length; e++) counts[((entries[e]! >>> shift) & mask) + 1]!++
}

/** Turns countKeys' counts into the first place of each key's entries. */
function toStarts(counts: Int32Array): void {
  for (let k = 1; k < counts.length; k++) counts[k]! += counts[k - 1]!
}

/** Copies the entries, in their order, to the places of their keys (`next`, advanced); keeps `value & keep`. */
function scatterByKey(
  entries: Uint32Array,
  length: number,
  shift: number,
  mask: number,
  next: Int32Array,
  into: Uint32Array,
  keep: number,
): void {
  for (let e = 0; e < length; e++) {
    const entry = entries[e]!
    into[next[(entry >>> shift) & mask]!++] = (entry & keep) >>> 0
  }
}

/** An empty aggregate (its list sets its index). */
function aggregate(key: number[]): Aggregate {
  return {
    key,
    index: -1,
    requests: 0,
    errors4xx: 0,
    errors5xx: 0,
    sumUs: 0,
    minUs: Number.POSITIVE_INFINITY,
    maxUs: Number.NEGATIVE_INFINITY,
  }
}

/**
 * Map keys of the aggregates: one number packing (hour or day, endpoint,
 * version, node) when each fits its bits (the common case: no string per
 * request, and this runs for every request the writer stores), else the
 * parts' text. 21 bits of hour (239 years), 14 of endpoint id, 10 of version
 * id, 8 of node id; the literals below are those powers of two.
 */
type MapKey = number | string

function timeKey(time: number, endpointId: number, versionId: number, node: number): MapKey {
  return time >= 0 &&
    time < 2_097_152 &&
    endpointId >= 0 &&
    endpointId < 16_384 &&
    versionId >= 0 &&
    versionId < 1024 &&
    node >= 0 &&
    node < 256
    ? ((time * 16_384 + endpointId) * 1024 + versionId) * 256 + node
    : `${time},${endpointId},${versionId},${node}`
}

/** Endpoint ids below this have a slot in TimeAggregates' recent list. */
const RECENT_ENDPOINTS = 65_536

/**
 * Values of one chunk by (hour or day, endpoint, version, node). The rows of
 * a batch mostly share their hour, version and node, so the value each
 * endpoint used last is checked first, without making a key.
 */
class TimeAggregates<T extends { key: number[] }> {
  readonly map = new Map<MapKey, T>()
  private readonly recent: Array<T | undefined> = []

  constructor(private readonly make: (key: number[]) => T) {}

  of(time: number, endpointId: number, versionId: number, node: number): T {
    const recent = endpointId < RECENT_ENDPOINTS ? this.recent[endpointId] : undefined
    if (
      recent !== undefined &&
      recent.key[1] === time &&
      recent.key[2] === versionId &&
      recent.key[3] === node
    ) {
      return recent
    }
    const mapKey = timeKey(time, endpointId, versionId, node)
    let found = this.map.get(mapKey)
    if (found === undefined)
      this.map.set(mapKey, (found = this.make([endpointId, time, versionId, node])))
    if (endpointId >= 0 && endpointId < RECENT_ENDPOINTS) this.recent[endpointId] = found
    return found
  }
}

/**
 * An hour's aggregate, with its requests per status (rollup_status sums them
 * over versions) and the smallest and largest id of its requests (schema 5:
 * where readers find them without an index on the requests).
 */
interface HourAggregate extends Aggregate {
  /** (status, requests) pairs: an hour sees a handful of statuses */
  statuses: number[]
  firstId: number
  lastId: number
}

/** The per-client aggregates of one (day, endpoint, version, node): clients by id (0: none). */
interface ClientGroup {
  key: number[]
  clients: Map<number, Aggregate>
}

/**
 * Per-client (user or IP) aggregates of (day, endpoint, client, version,
 * node) not written yet: the writer's pending ones, or one chunk's.
 */
class ClientAggregates {
  readonly list = new AggregateList<Aggregate>()
  private readonly groups = new TimeAggregates<ClientGroup>((key) => ({ key, clients: new Map() }))

  count(
    day: number,
    endpointId: number,
    client: number,
    versionId: number,
    node: number,
    durationUs: number,
    status: number,
    bucket: number,
  ): void {
    const group = this.groups.of(day, endpointId, versionId, node)
    let found = group.clients.get(client)
    if (found === undefined) {
      found = this.list.add(aggregate([endpointId, day, client, versionId, node]))
      group.clients.set(client, found)
    }
    this.list.count(found, durationUs, status, bucket)
  }
}

/** The per-user and per-IP aggregates of a pass; no IPs where the file has no rollup_ip_day. */
interface Clients {
  users: ClientAggregates | undefined
  ips: ClientAggregates | undefined
}

/**
 * Requests as the rollups count them, as columns: the rows the writer
 * inserts (it fills them, then inserts from them: no object per request), or
 * a chunk read back from the table. Ids of 0 stand for no node, user or IP.
 */
export class RollupColumns {
  count = 0
  id = new Float64Array(0)
  endpointId = new Int32Array(0)
  time = new Float64Array(0)
  durationUs = new Float64Array(0)
  status = new Int32Array(0)
  versionId = new Int32Array(0)
  nodeId = new Int32Array(0)
  userGroupId = new Int32Array(0)
  clientIpId = new Int32Array(0)

  /** Room for `capacity` rows before the columns grow. */
  constructor(capacity = 0) {
    if (capacity > 0) this.grow(capacity)
  }

  push(
    id: number,
    endpointId: number,
    time: number,
    durationUs: number,
    status: number,
    versionId: number,
    nodeId: number | null,
    userGroupId: number | null,
    clientIpId: number | null,
  ): void {
    if (this.count === this.time.length) this.grow()
    const i = this.count++
    this.id[i] = id
    this.endpointId[i] = endpointId
    this.time[i] = time
    this.durationUs[i] = durationUs
    this.status[i] = status
    this.versionId[i] = versionId
    this.nodeId[i] = nodeId ?? NO_ID
    this.userGroupId[i] = userGroupId ?? NO_ID
    this.clientIpId[i] = clientIpId ?? NO_ID
  }

  clear(): void {
    this.count = 0
  }

  private grow(capacity = Math.max(1024, this.time.length * 2)): void {
    const grown = <T extends Int32Array | Float64Array>(old: T, make: new (n: number) => T): T => {
      const next = new make(capacity)
      next.set(old)
      return next
    }
    this.id = grown(this.id, Float64Array)
    this.endpointId = grown(this.endpointId, Int32Array)
    this.time = grown(this.time, Float64Array)
    this.durationUs = grown(this.durationUs, Float64Array)
    this.status = grown(this.status, Int32Array)
    this.versionId = grown(this.versionId, Int32Array)
    this.nodeId = grown(this.nodeId, Int32Array)
    this.userGroupId = grown(this.userGroupId, Int32Array)
    this.clientIpId = grown(this.clientIpId, Int32Array)
  }
}

/** A request as read back from the table (statements.select, raw). */
type Row = [
  id: number,
  endpointId: number,
  time: number,
  durationUs: number,
  status: number,
  versionId: number,
  nodeId: number | null,
  userGroupId: number | null,
  clientIpId: number | null,
]

interface Statements {
  select: Database.Statement
  watermark: Database.Statement
  maxId: Database.Statement
  setWatermark: Database.Statement
  /**
   * one upsert per rollup table with histograms: rollup_hour, rollup_day,
   * rollup_user_day, and rollup_ip_day where the connection has it (schema 4)
   */
  upserts: Database.Statement[]
  /** whether rollup_ip_day is counted */
  ips: boolean
  /** whether rollup_hour keeps first_id and last_id (schema 5) */
  spans: boolean
  status: Database.Statement
}

/** SQL function that adds two encoded histograms (registered on each connection that writes rollups). */
const MERGE_FUNCTION = 'routemeter_merge_histograms'

const cache = new WeakMap<object, Statements>()

/**
 * Per-user and per-IP aggregates of the requests this connection inserted above the
 * user watermark, through request id `through`, not written yet (the writer
 * writes them every USER_ROLLUP_ROWS requests, one upsert per key). Only
 * trusted while `through` equals the file's rollup watermark: a rolled-back
 * transaction or another process's rows make it stale, and the requests are
 * then read back from the table instead.
 */
const pendingClientsOf = new WeakMap<object, { through: number; clients: Clients }>()

function statementsOf(db: RollupDb): Statements {
  let statements = cache.get(db)
  if (statements !== undefined) return statements
  db.function(MERGE_FUNCTION, { deterministic: true }, (a, b) =>
    mergeEncodedHistograms(a as Uint8Array, b as Uint8Array),
  )
  // A file before schema 4 (during its migration) has no rollup_ip_day; a TEMP one counts too.
  const ips =
    db
      .prepare(
        `SELECT 1 FROM sqlite_schema WHERE name = 'rollup_ip_day'
         UNION ALL SELECT 1 FROM sqlite_temp_schema WHERE name = 'rollup_ip_day'`,
      )
      .get() !== undefined
  const spans = (
    db.prepare('PRAGMA table_info(rollup_hour)').all() as Array<{ name: string }>
  ).some((column) => column.name === 'first_id')
  // Adds a chunk's aggregate to the row of its key: one statement per key.
  const upsert = (table: string, columns: string[], errors: boolean, withSpans = false) => {
    const counts = ['requests', ...(errors ? ['errors_4xx', 'errors_5xx'] : []), 'sum_us']
    const ids = withSpans ? ['first_id', 'last_id'] : []
    const values = [...columns, ...counts, 'min_us', 'max_us', 'histogram', ...ids]
    return db.prepare(
      `INSERT INTO ${table} (${values.join(', ')}) VALUES (${values.map(() => '?').join(', ')})
         ON CONFLICT DO UPDATE SET
           ${counts.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')},
           min_us = min(min_us, excluded.min_us),
           max_us = max(max_us, excluded.max_us),
           histogram = ${MERGE_FUNCTION}(histogram, excluded.histogram)${
             withSpans
               ? `,
           first_id = min(coalesce(first_id, excluded.first_id), excluded.first_id),
           last_id = max(coalesce(last_id, excluded.last_id), excluded.last_id)`
               : ''
           }`,
    )
  }
  statements = {
    select: db
      .prepare(
        `SELECT id, endpoint_id, time, duration_us, status, version_id, node_id, user_group_id,
                client_ip_id
         FROM request WHERE id > ? ORDER BY id LIMIT ?`,
      )
      .raw(),
    watermark: db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
    maxId: db.prepare('SELECT max(id) FROM request').pluck(),
    setWatermark: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
    upserts: [
      upsert('rollup_hour', ['endpoint_id', 'hour', 'version_id', 'node_id'], true, spans),
      upsert('rollup_day', ['endpoint_id', 'day', 'version_id', 'node_id'], true),
      upsert(
        'rollup_user_day',
        ['endpoint_id', 'day', 'user_group_id', 'version_id', 'node_id'],
        false,
      ),
      ...(ips
        ? [
            upsert(
              'rollup_ip_day',
              ['endpoint_id', 'day', 'client_ip_id', 'version_id', 'node_id'],
              false,
            ),
          ]
        : []),
    ],
    ips,
    spans,
    status: db.prepare(
      `INSERT INTO rollup_status (endpoint_id, hour, node_id, status, requests) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT DO UPDATE SET requests = requests + excluded.requests`,
    ),
  }
  cache.set(db, statements)
  return statements
}

/**
 * Drops what a connection prepared for the rollup tables: a migration that
 * changes them calls it (statements prepared before count the old tables).
 */
export function forgetRollupStatements(db: RollupDb): void {
  cache.delete(db)
  pendingClientsOf.delete(db)
}

/** The largest request id already counted in the rollups (0: none). */
export function rollupWatermark(db: RollupDb): number {
  const value = statementsOf(db).watermark.get(ROLLUP_WATERMARK_KEY) as string | undefined
  return value === undefined ? 0 : Number(value)
}

/** One rollup row as its table's upsert binds it (histograms encoded). */
type RollupParams = unknown[]

/**
 * Rollup rows counted from a chunk of requests, not written yet: per upsert
 * table (rollup_hour, rollup_day, rollup_user_day, rollup_ip_day where the
 * file has it), and rollup_status's rows. Plain data: it can cross threads.
 */
export interface CountedChunk {
  tables: RollupParams[][]
  statuses: RollupParams[]
}

/** Where the per-user and per-IP tables start in CountedChunk.tables (CLIENT_ROLLUP_TABLES). */
const FIRST_CLIENT_TABLE = 2

/** What the counting must match: the tables the file has (Statements.ips and .spans). */
interface RollupShape {
  ips: boolean
  spans: boolean
}

/** The upsert's parameters of one aggregate. */
function paramsOf(
  agg: Aggregate,
  histogram: Buffer,
  errors: boolean,
  spans: boolean,
): RollupParams {
  return [
    ...agg.key,
    agg.requests,
    ...(errors ? [agg.errors4xx, agg.errors5xx] : []),
    agg.sumUs,
    agg.minUs,
    agg.maxUs,
    histogram,
    ...(spans ? [(agg as HourAggregate).firstId, (agg as HourAggregate).lastId] : []),
  ]
}

/** A list's aggregates as upsert parameters. */
function paramsOfList(
  list: AggregateList<Aggregate> | undefined,
  errors: boolean,
  spans = false,
): RollupParams[] {
  if (list === undefined) return []
  const histograms = list.histograms()
  return list.items.map((agg, i) => paramsOf(agg, histograms[i]!, errors, spans))
}

/** The per-table aggregates as upsert parameters (the tables' order of Statements.upserts). */
function countedOf(
  shape: RollupShape,
  perTable: [
    hours: AggregateList<Aggregate> | undefined,
    days: AggregateList<Aggregate> | undefined,
    users: AggregateList<Aggregate> | undefined,
    ips: AggregateList<Aggregate> | undefined,
  ],
  statuses: Iterable<{ key: number[]; requests: number }>,
): CountedChunk {
  const [hours, days, users, ips] = perTable
  return {
    tables: [
      paramsOfList(hours, true, shape.spans),
      paramsOfList(days, true),
      paramsOfList(users, false),
      ...(shape.ips ? [paramsOfList(ips, false)] : []),
    ],
    statuses: Array.from(statuses, ({ key, requests }) => [...key, requests]),
  }
}

/** Adds counted rows to the rollup tables. */
function writeCounted(statements: Statements, counted: CountedChunk): void {
  if (counted.tables.length !== statements.upserts.length) {
    throw new Error(
      `routemeter: rollups counted for ${counted.tables.length} tables, the file has ${statements.upserts.length}`,
    )
  }
  statements.upserts.forEach((statement, t) => {
    // As arguments, not an array: see request-insert.ts (better-sqlite3 reads arrays slowly).
    for (const params of counted.tables[t]!) statement.run(...params)
  })
  for (const params of counted.statuses) statements.status.run(...params)
}

/**
 * Which rollups a pass counts: all; all but the clients' (users and IPs: the
 * writer's every batch); the clients' only; IPs only (migration 0004).
 */
type Pass = 'all' | 'main' | 'clients' | 'ips'

/** Empty per-client aggregates for a pass: users unless IPs only, IPs where the file has them. */
function clientsFor(shape: RollupShape, pass: Pass): Clients {
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
function countRows(
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
    const id = rows.id[i]!
    if (id < hour.firstId) hour.firstId = id
    if (id > hour.lastId) hour.lastId = id
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
function countChunk(
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
function rollUpChunk(
  statements: Statements,
  rows: RollupColumns,
  pass: Pass,
  pending?: Clients,
): void {
  writeCounted(statements, countChunk(statements, rows, pass, pending))
}

/** The pending per-client aggregates as rows (rollup_user_day, rollup_ip_day). */
function countedClients(shape: RollupShape, clients: Clients): CountedChunk {
  return countedOf(shape, [undefined, undefined, clients.users?.list, clients.ips?.list], [])
}

/**
 * Counts the requests with afterId < id <= through in one pass; returns the
 * largest id read.
 */
function rollUpPass(
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
function isCountable(
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

function isId(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) < 2 ** 31
}

/** Request rows left out of the rollups for values out of range, per connection. */
const invalidRowsOf = new WeakMap<object, number>()

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
 * Rollup rows of requests counted away from the file (another thread than
 * the one that writes it: the traffic generator's), and the ids they cover:
 * writeCountedRollups() adds them. `clients` is set when the per-user and
 * per-IP rows are included, counting the requests clientsAfterId < id <= through.
 */
export interface CountedRollups extends CountedChunk {
  afterId: number
  through: number
  clients: { afterId: number } | undefined
}

/**
 * Counts requests as the writer does, without a connection, for a program
 * that inserts them on another thread: the rows it hands over have ids
 * following one another from `afterId` + 1, and it counts the users and IPs
 * every USER_ROLLUP_ROWS requests (and when told to: `clientsNow`).
 */
export class RollupCounter {
  private through: number
  private clientsAfter: number
  private clients: Clients
  private readonly shape: RollupShape

  /**
   * Counts for a file of the current schema (rollup_ip_day, id spans in
   * rollup_hour) whose rollups, users' included, count requests through `afterId`.
   */
  constructor(afterId = 0) {
    this.shape = { ips: true, spans: true }
    this.through = afterId
    this.clientsAfter = afterId
    this.clients = clientsFor(this.shape, 'clients')
  }

  count(rows: RollupColumns, clientsNow = false): CountedRollups {
    if (rows.count > 0) {
      const first = rows.id[0]!
      const last = rows.id[rows.count - 1]!
      if (first !== this.through + 1 || last !== this.through + rows.count) {
        throw new RangeError(
          `routemeter: requests ${first}..${last} do not follow request ${this.through} one by one`,
        )
      }
    }
    const afterId = this.through
    const counted = countChunk(this.shape, rows, 'main', this.clients)
    this.through += rows.count
    let clients: CountedRollups['clients']
    if (clientsNow || this.through - this.clientsAfter >= USER_ROLLUP_ROWS) {
      const rowsOfClients = countedClients(this.shape, this.clients)
      counted.tables = counted.tables.map((rows, t) =>
        t >= FIRST_CLIENT_TABLE ? rowsOfClients.tables[t]! : rows,
      )
      clients = { afterId: this.clientsAfter }
      this.clientsAfter = this.through
      this.clients = clientsFor(this.shape, 'clients')
    }
    return { ...counted, afterId, through: this.through, clients }
  }
}

/**
 * Adds rollups counted by a RollupCounter, in the caller's transaction, and
 * moves the watermarks past them. Throws, writing nothing, unless they follow
 * the file's watermarks exactly (counted twice, or requests left out).
 */
export function writeCountedRollups(db: RollupDb, counted: CountedRollups): void {
  const statements = statementsOf(db)
  const watermark = rollupWatermark(db)
  if (watermark !== counted.afterId) {
    throw new Error(
      `routemeter: rollups of requests ${counted.afterId + 1}..${counted.through} do not follow the file's, counted through request ${watermark}`,
    )
  }
  if (counted.clients !== undefined && userRollupWatermark(db) !== counted.clients.afterId) {
    throw new Error(
      `routemeter: per-user rollups from request ${counted.clients.afterId + 1} do not follow the file's, counted through request ${userRollupWatermark(db)}`,
    )
  }
  if (!statements.spans || !statements.ips) {
    throw new Error('routemeter: counted rollups need a file of the current schema')
  }
  // Another writer's in-memory users would no longer be the requests above the watermark.
  pendingClientsOf.delete(db)
  writeCounted(statements, counted)
  if (counted.through > watermark) {
    statements.setWatermark.run(ROLLUP_WATERMARK_KEY, String(counted.through))
  }
  if (counted.clients !== undefined) {
    statements.setWatermark.run(USER_ROLLUP_WATERMARK_KEY, String(counted.through))
  }
}

/** The tables of the per-user and per-IP rows: CountedChunk.tables' from FIRST_CLIENT_TABLE on. */
export const CLIENT_ROLLUP_TABLES = ['rollup_user_day', 'rollup_ip_day'] as const

/**
 * Adds the per-user and per-IP rows of counted rollups to a file's (upserts,
 * as the writer does), nothing else and no watermark: for a file that holds
 * them apart from the requests they count (the bulk writer's, see BulkOptions).
 */
export function writeClientRollupRows(db: RollupDb, counted: CountedChunk): void {
  writeCounted(statementsOf(db), {
    tables: counted.tables.map((rows, t) => (t >= FIRST_CLIENT_TABLE ? rows : [])),
    statuses: [],
  })
}

/** Counted rollups without their per-user and per-IP rows (those written apart, above). */
export function withoutClientRollupRows<T extends CountedChunk>(counted: T): T {
  return {
    ...counted,
    tables: counted.tables.map((rows, t) => (t >= FIRST_CLIENT_TABLE ? [] : rows)),
  }
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
