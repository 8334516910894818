/**
 * The rollup tables' statements, prepared once per connection, and how counted
 * aggregates become their upserts.
 */
import type Database from 'better-sqlite3'
import { mergeEncodedHistograms } from '../../schema/rollup.js'
import { RollupDb } from './common.js'
import { Aggregate, AggregateList } from './aggregate-list.js'
import { Clients, HourAggregate } from './aggregates.js'

export interface Statements {
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
export const MERGE_FUNCTION = 'routemeter_merge_histograms'

export const cache = new WeakMap<object, Statements>()

/**
 * Per-user and per-IP aggregates of the requests this connection inserted above the
 * user watermark, through request id `through`, not written yet (the writer
 * writes them every USER_ROLLUP_ROWS requests, one upsert per key). Only
 * trusted while `through` equals the file's rollup watermark: a rolled-back
 * transaction or another process's rows make it stale, and the requests are
 * then read back from the table instead.
 */
export const pendingClientsOf = new WeakMap<object, { through: number; clients: Clients }>()

export function statementsOf(db: RollupDb): Statements {
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
           first_id = coalesce(min(first_id, excluded.first_id), first_id, excluded.first_id),
           last_id = coalesce(max(last_id, excluded.last_id), last_id, excluded.last_id)`
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

/** One rollup row as its table's upsert binds it (histograms encoded). */
export type RollupParams = unknown[]

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
export const FIRST_CLIENT_TABLE = 2

/** What the counting must match: the tables the file has (Statements.ips and .spans). */
export interface RollupShape {
  ips: boolean
  spans: boolean
}

/** The upsert's parameters of one aggregate. */
export function paramsOf(
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
    // An hour of sampled-away requests only has no span (infinite bounds): NULL.
    ...(spans
      ? [finiteOrNull((agg as HourAggregate).firstId), finiteOrNull((agg as HourAggregate).lastId)]
      : []),
  ]
}

function finiteOrNull(id: number): number | null {
  return Number.isFinite(id) ? id : null
}

/** A list's aggregates as upsert parameters. */
export function paramsOfList(
  list: AggregateList<Aggregate> | undefined,
  errors: boolean,
  spans = false,
): RollupParams[] {
  if (list === undefined) return []
  const histograms = list.histograms()
  return list.items.map((agg, i) => paramsOf(agg, histograms[i]!, errors, spans))
}

/** The per-table aggregates as upsert parameters (the tables' order of Statements.upserts). */
export function countedOf(
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
export function writeCounted(statements: Statements, counted: CountedChunk): void {
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
