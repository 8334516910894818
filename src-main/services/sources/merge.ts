/**
 * Files this app writes itself: a server's pulled copy brought up to date
 * with a delta, and one dataset merged from several metrics files.
 *
 * Merging maps what ids mean rather than the ids: endpoints by method and
 * route, versions, users or groups, client IPs and nodes by name. Requests
 * get new ids; a request without a node is given a node named after its
 * source, so that the per-node views can still tell the sources apart.
 *
 * Every file written here uses a rollback journal, not WAL: the app swaps
 * such files by renaming a new one over the old, and a stale -wal beside a
 * renamed file would be replayed into it.
 */
import Database from 'better-sqlite3'
import { renameSync, rmSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { migrate } from 'routemeter/schema'
import { KEPT_SINCE_KEYS } from 'routemeter/schema'
import {
  histogramMergeFunction,
  ROLLUP_WATERMARK_KEY,
  rollUpAfter,
  rollUpRequests,
  USER_ROLLUP_WATERMARK_KEY,
} from 'routemeter/writer'
import { getNativeBinding } from '../database.js'
import {
  decodeProfile,
  encodeProfile,
  mergeProfiles,
  sampleCount,
  type FoldedProfile,
} from 'routemeter/profiles'

export function openWritable(path: string): Database.Database {
  const binding = getNativeBinding()
  const db = new Database(path, {
    timeout: 5000,
    ...(binding === undefined ? {} : { nativeBinding: binding }),
  })
  // better-sqlite3 turns foreign keys on; the request table has no index on most of its
  // references, so each replaced name would scan every request. Rows go in referenced first.
  db.pragma('foreign_keys = OFF')
  return db
}

/** Switches a file of ours to a rollback journal (see the top of this file). */
export function useRollbackJournal(path: string): void {
  const db = openWritable(path)
  try {
    db.pragma('journal_mode = DELETE')
  } finally {
    db.close()
  }
}

/** A temporary name next to `path`, on the same file system so that rename is atomic. */
export function partPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.part`)
}

/** Renames `part` over `path`, first removing a -wal and -shm that belong to the old file. */
export function replaceFile(part: string, path: string): void {
  for (const suffix of ['-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true })
  renameSync(part, path)
}

/** Highest request id of a file (0 when it has none). */
export function lastRequestId(db: Database.Database, schema = 'main'): number {
  return (
    (db.prepare(`SELECT coalesce(max(id), 0) FROM ${schema}.request`).pluck().get() as number) ?? 0
  )
}

/**
 * Counts requests with id > `afterId` into the views' rollup tables, in the
 * caller's transaction. A file without rollup tables (pulled from an older
 * collector) is left as it is: the dashboard rolls such files up on open.
 */
function rebuildRollups(db: Database.Database, afterId: number): void {
  const hasRollups = db
    .prepare("SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = 'rollup_hour'")
    .get()
  if (hasRollups !== undefined) rollUpRequests(db, afterId)
}

/**
 * The tables a delta carries besides requests. Not meta: it holds the
 * rollups' watermark, which must stay the copy's own.
 */
const DIMENSION_TABLES = ['endpoint', 'version', 'user_group', 'client_ip', 'node'] as const

function columnsOf(db: Database.Database, schema: string, table: string): string[] {
  return (db.prepare(`PRAGMA ${schema}.table_info(${table})`).all() as Array<{ name: string }>).map(
    (column) => column.name,
  )
}

/**
 * Applies a delta snapshot (`?since=<id>`: every table but the requests in
 * full, plus the requests with id > since) to a pulled copy, in place, in
 * one transaction. Ids are the server's in both files, so rows replace rows.
 * Returns the copy's new last request id.
 */
export function applyDelta(copyPath: string, deltaPath: string, since: number): number {
  const db = openWritable(copyPath)
  try {
    db.prepare('ATTACH DATABASE ? AS delta').run(deltaPath)
    // Sampled rows stand for requests the delta does not carry: only the server's rollups
    // (a full copy) count those.
    if (hasSampledRows(db, 'delta', since)) {
      db.exec('DETACH DATABASE delta')
      throw new Error('the new requests are sampled: a full copy is needed for their counts')
    }
    db.transaction(() => {
      // Outliers come whole, like the dimensions: ids are the server's in both files.
      for (const table of [...DIMENSION_TABLES, 'outlier', 'request']) {
        const theirs = columnsOf(db, 'delta', table)
        const ours = new Set(columnsOf(db, 'main', table))
        if (theirs.length === 0 || ours.size === 0) continue
        const columns = theirs.filter((name) => ours.has(name)).join(', ')
        if (table === 'request') {
          db.prepare(
            `INSERT OR IGNORE INTO main.request (${columns}) SELECT ${columns} FROM delta.request WHERE id > ? ORDER BY id`,
          ).run(since)
        } else {
          // An upsert on the id, not REPLACE: ids are the server's in both files.
          const updates = theirs
            .filter((name) => name !== 'id' && ours.has(name))
            .map((name) => `${name} = excluded.${name}`)
          db.exec(
            `INSERT INTO main.${table} (${columns}) SELECT ${columns} FROM delta.${table} WHERE true
             ON CONFLICT (id) DO ${updates.length === 0 ? 'NOTHING' : `UPDATE SET ${updates.join(', ')}`}`,
          )
        }
      }
      // Level 3's profiles come whole too: an hour's row grows as its samples arrive.
      const theirs = columnsOf(db, 'delta', 'profile')
      const ours = new Set(columnsOf(db, 'main', 'profile'))
      if (theirs.length > 0 && ours.size > 0) {
        const columns = theirs.filter((name) => ours.has(name)).join(', ')
        db.exec(
          `DELETE FROM main.profile; INSERT INTO main.profile (${columns}) SELECT ${columns} FROM delta.profile`,
        )
      }
      rebuildRollups(db, since)
    }).immediate()
    const last = lastRequestId(db)
    db.exec('DETACH DATABASE delta')
    return last
  } finally {
    db.close()
  }
}

/** One input of a merge. */
export interface MergeSource {
  path: string
  /** names the node of requests that have none (a file's name, a server's host) */
  label: string
}

/** How far each source has been merged, so that the next merge adds only what is new. */
export interface MergeMark {
  path: string
  lastRequestId: number
  /** the source's largest outlier id merged (0: none) */
  lastOutlierId?: number
}

/**
 * Creates `dest` from scratch (through a part file renamed at the end) with
 * every source's rows. Returns how far each source was merged.
 */
export function mergeSources(dest: string, sources: readonly MergeSource[]): MergeMark[] {
  const part = partPath(dest)
  rmSync(part, { force: true })
  const db = openWritable(part)
  let marks: MergeMark[]
  try {
    migrate(db)
    db.prepare(
      "INSERT OR REPLACE INTO meta (key, value) VALUES ('routemeter_desktop_merged', ?)",
    ).run(JSON.stringify(sources.map((source) => source.label)))
    marks = addToMerged(db, sources, new Map()) ?? []
  } catch (error) {
    db.close()
    rmSync(part, { force: true })
    throw error
  }
  db.close()
  replaceFile(part, dest)
  return marks
}

/**
 * Adds to an existing merged file what is new in its sources (requests with
 * a higher id than last time; endpoints, levels and names in full), in one
 * transaction, in place. Returns null when a source was replaced by another
 * file (its last id went down): only a full merge is right then.
 */
export function mergeIncrement(
  dest: string,
  sources: readonly MergeSource[],
  marks: readonly MergeMark[],
): MergeMark[] | null {
  const since = new Map(
    marks.map((mark) => [
      mark.path,
      { requests: mark.lastRequestId, outliers: mark.lastOutlierId ?? 0 },
    ]),
  )
  const db = openWritable(dest)
  try {
    return addToMerged(db, sources, since)
  } finally {
    db.close()
  }
}

/** SQLite attaches at most 10 databases to a connection. */
export const MAX_MERGED_SOURCES = 10

class SourceShrank extends Error {}

function addToMerged(
  db: Database.Database,
  sources: readonly MergeSource[],
  since: ReadonlyMap<string, { requests: number; outliers: number }>,
): MergeMark[] | null {
  if (sources.length > MAX_MERGED_SOURCES) {
    throw new Error(`at most ${MAX_MERGED_SOURCES} files or servers can be opened as one`)
  }
  // ATTACH is refused inside a transaction: attach all, then merge all in one.
  // Sources are only ever read (SELECT) through these names.
  sources.forEach((source, index) =>
    db.prepare(`ATTACH DATABASE ? AS src${index}`).run(source.path),
  )
  try {
    return db
      .transaction(() => {
        // A source may have lowered a level: the merged level is the highest of the sources' now.
        db.exec('UPDATE endpoint SET monitor_level = 0')
        const marks = sources.map((source, index) => {
          const schema = `src${index}`
          const last = lastRequestId(db, schema)
          const from = since.get(source.path) ?? { requests: 0, outliers: 0 }
          if (last < from.requests) throw new SourceShrank(source.path)
          // Sampled rows stand for requests that only the source's rollups count.
          if (from.requests > 0 && hasSampledRows(db, schema, from.requests)) {
            throw new SourceShrank(source.path)
          }
          const first = lastRequestId(db)
          const fallbackNode = addSource(db, schema, source, from.requests)
          const end = lastRequestId(db)
          if (from.requests === 0 && hasClientRollups(db, schema)) {
            // A whole source: its rollups, which count what it pruned and sampled away too.
            addRollups(db, schema, fallbackNode)
            addSpans(db, first, end)
            addProfiles(db, schema)
            // Its requests that its per-user and per-IP rollups do not count yet.
            const counted = db
              .prepare(`SELECT count(*) FROM ${schema}.request WHERE id <= ?`)
              .pluck()
              .get(sourceUserWatermark(db, schema)) as number
            if (first + counted < end)
              rollUpAfter(db, first + counted, { through: end, clients: true })
          } else if (end > first) rollUpAfter(db, first, { through: end })
          keepRawSince(db, schema)
          const lastOutlierId = addOutliers(db, schema, from.outliers)
          return { path: source.path, lastRequestId: last, lastOutlierId }
        })
        // Every request in the merged file is counted now, by the steps above.
        const through = String(lastRequestId(db))
        const setMeta = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)')
        setMeta.run(ROLLUP_WATERMARK_KEY, through)
        setMeta.run(USER_ROLLUP_WATERMARK_KEY, through)
        return marks
      })
      .immediate()
  } catch (error) {
    if (error instanceof SourceShrank) return null
    throw error
  } finally {
    sources.forEach((_source, index) => db.exec(`DETACH DATABASE src${index}`))
  }
}

/** Whether an attached source's requests above `since` include sampled rows (weight > 1). */
function hasSampledRows(db: Database.Database, src: string, since: number): boolean {
  if (!columnsOf(db, src, 'request').includes('weight')) return false
  return (
    db.prepare(`SELECT 1 FROM ${src}.request WHERE id > ? AND weight > 1 LIMIT 1`).get(since) !==
    undefined
  )
}

/** Whether an attached source has every rollup table (schema 4 on: per-IP rollups). */
function hasClientRollups(db: Database.Database, src: string): boolean {
  return columnsOf(db, src, 'rollup_ip_day').length > 0
}

/** The largest request id an attached source counts per user and IP (SCHEMA.md, meta). */
function sourceUserWatermark(db: Database.Database, src: string): number {
  const value = (key: string) =>
    db.prepare(`SELECT value FROM ${src}.meta WHERE key = ?`).pluck().get(key) as string | undefined
  return Number(value(USER_ROLLUP_WATERMARK_KEY) ?? value(ROLLUP_WATERMARK_KEY) ?? 0)
}

/**
 * Adds an attached source's rollups to main's, keys mapped (endpoint 0, the
 * rows of every endpoint, and id 0, none, stay as they are; a source's
 * requests without a node are given `fallbackNode`). Rows of one key from
 * two sources are added up, histograms merged.
 */
function addRollups(db: Database.Database, src: string, fallbackNode: number | null): void {
  const merge = histogramMergeFunction(db)
  const id = (map: string, column: string) =>
    `CASE WHEN r.${column} = 0 THEN 0 ELSE (SELECT dst FROM temp.${map} WHERE src = r.${column}) END`
  const node = `CASE WHEN r.node_id = 0 THEN ${fallbackNode ?? 0} ELSE (SELECT dst FROM temp.map_node WHERE src = r.node_id) END`
  const summed = (columns: string[]) =>
    [
      ...columns.map((c) => `${c} = ${c} + excluded.${c}`),
      'min_us = min(min_us, excluded.min_us)',
      'max_us = max(max_us, excluded.max_us)',
      `histogram = ${merge}(histogram, excluded.histogram)`,
    ].join(', ')
  const tables: Array<[table: string, keys: string[], counts: string[]]> = [
    ['rollup_hour', ['hour'], ['requests', 'errors_4xx', 'errors_5xx', 'sum_us']],
    ['rollup_day', ['day'], ['requests', 'errors_4xx', 'errors_5xx', 'sum_us']],
    ['rollup_user_day', ['day', 'user_group_id'], ['requests', 'sum_us']],
    ['rollup_ip_day', ['day', 'client_ip_id'], ['requests', 'sum_us']],
  ]
  for (const [table, keys, counts] of tables) {
    const mapped = keys.map((key) =>
      key === 'user_group_id'
        ? id('map_user', key)
        : key === 'client_ip_id'
          ? id('map_ip', key)
          : `r.${key}`,
    )
    db.exec(
      `INSERT INTO main.${table} (endpoint_id, ${keys.join(', ')}, version_id, node_id, ${counts.join(', ')}, min_us, max_us, histogram)
       SELECT ${id('map_endpoint', 'endpoint_id')}, ${mapped.join(', ')},
              (SELECT dst FROM temp.map_version WHERE src = r.version_id), ${node},
              ${counts.map((c) => `r.${c}`).join(', ')}, r.min_us, r.max_us, r.histogram
       FROM ${src}.${table} r WHERE true
       ON CONFLICT DO UPDATE SET ${summed(counts)}`,
    )
  }
  db.exec(
    `INSERT INTO main.rollup_status (endpoint_id, hour, node_id, status, requests)
     SELECT ${id('map_endpoint', 'endpoint_id')}, r.hour, ${node}, r.status, r.requests
     FROM ${src}.rollup_status r WHERE true
     ON CONFLICT DO UPDATE SET requests = requests + excluded.requests`,
  )
}

/** Sets rollup_hour's id spans for the requests with first < id <= end (just copied). */
function addSpans(db: Database.Database, first: number, end: number): void {
  if (end <= first) return
  db.prepare(
    `UPDATE rollup_hour SET
       first_id = coalesce(min(rollup_hour.first_id, span.low), rollup_hour.first_id, span.low),
       last_id = coalesce(max(rollup_hour.last_id, span.high), rollup_hour.last_id, span.high)
     FROM (SELECT endpoint_id, time / 3600000 AS hour, version_id, coalesce(node_id, 0) AS node_id,
                  min(id) AS low, max(id) AS high
           FROM request WHERE id > ? AND id <= ? GROUP BY 1, 2, 3, 4) AS span
     WHERE rollup_hour.endpoint_id = span.endpoint_id AND rollup_hour.hour = span.hour
       AND rollup_hour.version_id = span.version_id AND rollup_hour.node_id = span.node_id`,
  ).run(first, end)
}

/** The merged file keeps raw rows from the latest of its sources' windows. */
function keepRawSince(db: Database.Database, src: string): void {
  const key = KEPT_SINCE_KEYS.requests
  const theirs = Number(
    db.prepare(`SELECT value FROM ${src}.meta WHERE key = ?`).pluck().get(key) ?? 0,
  )
  const ours = Number(db.prepare('SELECT value FROM main.meta WHERE key = ?').pluck().get(key) ?? 0)
  if (theirs > ours) {
    db.prepare('INSERT OR REPLACE INTO main.meta (key, value) VALUES (?, ?)').run(
      key,
      String(theirs),
    )
  }
}

/**
 * Copies the outliers of an attached source with id > `since` into main, with
 * the ids addSource mapped; returns the source's largest outlier id.
 */
function addOutliers(db: Database.Database, src: string, since: number): number {
  const columns = columnsOf(db, src, 'outlier')
  if (columns.length === 0) return 0
  // Level 3's own profile of an outlier (schema 9).
  const profile = columns.includes('profile') ? 'o.profile' : 'NULL'
  db.prepare(
    `INSERT INTO main.outlier
       (endpoint_id, time, duration_us, threshold_us, caught_us, status, version_id, node_id,
        user_group_id, client_ip_id, method, url, cause, cause_detail, context, profile)
     SELECT e.dst, o.time, o.duration_us, o.threshold_us, o.caught_us, o.status, v.dst, n.dst,
            u.dst, i.dst, o.method, o.url, o.cause, o.cause_detail, o.context, ${profile}
     FROM ${src}.outlier o
     JOIN temp.map_endpoint e ON e.src = o.endpoint_id
     JOIN temp.map_version v ON v.src = o.version_id
     LEFT JOIN temp.map_user u ON u.src = o.user_group_id
     LEFT JOIN temp.map_ip i ON i.src = o.client_ip_id
     LEFT JOIN temp.map_node n ON n.src = o.node_id
     WHERE o.id > ?
     ORDER BY o.id`,
  ).run(since)
  return db.prepare(`SELECT coalesce(max(id), 0) FROM ${src}.outlier`).pluck().get() as number
}

/**
 * Adds a whole attached source's level 3 profiles to main's, ids mapped; a
 * row of the same endpoint, hour, version and node from another source is
 * merged with it (the stacks' samples added).
 */
function addProfiles(db: Database.Database, src: string): void {
  if (columnsOf(db, src, 'profile').length === 0) return
  const rows = db
    .prepare(
      `SELECT e.dst AS endpointId, p.hour, v.dst AS versionId,
              coalesce((SELECT dst FROM temp.map_node WHERE src = p.node_id), p.node_id) AS nodeId,
              p.interval_us AS intervalUs, p.tree
       FROM ${src}.profile p
       JOIN temp.map_endpoint e ON e.src = p.endpoint_id
       JOIN temp.map_version v ON v.src = p.version_id`,
    )
    .all() as Array<{
    endpointId: number
    hour: number
    versionId: number
    nodeId: number
    intervalUs: number
    tree: Uint8Array
  }>
  const existing = db
    .prepare(
      'SELECT tree FROM main.profile WHERE endpoint_id = ? AND hour = ? AND version_id = ? AND node_id = ?',
    )
    .pluck()
  const write = db.prepare('INSERT OR REPLACE INTO main.profile VALUES (?, ?, ?, ?, ?, ?, ?)')
  for (const row of rows) {
    const key = [row.endpointId, row.hour, row.versionId, row.nodeId] as const
    let profile: FoldedProfile
    try {
      profile = decodeProfile(row.tree)
    } catch {
      continue // a source's row that does not decode is left out
    }
    const before = existing.get(...key) as Uint8Array | undefined
    if (before !== undefined) {
      try {
        profile = mergeProfiles(decodeProfile(before), profile)
      } catch {
        // main's row does not decode: the source's stands
      }
    }
    write.run(...key, sampleCount(profile), row.intervalUs, encodeProfile(profile))
  }
}

/**
 * Copies one attached source (`src`) into main: dimensions by name, then its
 * requests > `since`. Returns the node given to its requests without one (null: none).
 */
function addSource(
  db: Database.Database,
  src: string,
  source: MergeSource,
  since: number,
): number | null {
  const hasNodes = columnsOf(db, src, 'node').length > 0
  const tags = columnsOf(db, src, 'version').includes('tags')
  db.exec(`
    INSERT INTO main.endpoint (method, route, monitor_level, first_seen, last_requested)
      SELECT method, route, monitor_level, first_seen, last_requested FROM ${src}.endpoint WHERE true
      ON CONFLICT (method, route) DO UPDATE SET
        monitor_level = max(monitor_level, excluded.monitor_level),
        first_seen = min(first_seen, excluded.first_seen),
        last_requested = CASE
          WHEN last_requested IS NULL THEN excluded.last_requested
          WHEN excluded.last_requested IS NULL THEN last_requested
          ELSE max(last_requested, excluded.last_requested) END;
    INSERT INTO main.version (name, source, first_seen${tags ? ', tags' : ''})
      SELECT name, source, first_seen${tags ? ', tags' : ''} FROM ${src}.version WHERE true
      ON CONFLICT (name) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen)${
        tags ? ', tags = coalesce(excluded.tags, tags)' : ''
      };
    INSERT OR IGNORE INTO main.user_group (name) SELECT name FROM ${src}.user_group;
    INSERT OR IGNORE INTO main.client_ip (address) SELECT address FROM ${src}.client_ip;
    ${
      hasNodes
        ? `INSERT INTO main.node (name, first_seen) SELECT name, first_seen FROM ${src}.node WHERE true
             ON CONFLICT (name) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen);`
        : ''
    }
    DROP TABLE IF EXISTS temp.map_endpoint;
    DROP TABLE IF EXISTS temp.map_version;
    DROP TABLE IF EXISTS temp.map_user;
    DROP TABLE IF EXISTS temp.map_ip;
    DROP TABLE IF EXISTS temp.map_node;
    CREATE TEMP TABLE map_endpoint (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL);
    CREATE TEMP TABLE map_version (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL);
    CREATE TEMP TABLE map_user (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL);
    CREATE TEMP TABLE map_ip (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL);
    CREATE TEMP TABLE map_node (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL);
    INSERT INTO map_endpoint SELECT s.id, m.id FROM ${src}.endpoint s
      JOIN main.endpoint m ON m.method = s.method AND m.route = s.route;
    INSERT INTO map_version SELECT s.id, m.id FROM ${src}.version s JOIN main.version m ON m.name = s.name;
    INSERT INTO map_user SELECT s.id, m.id FROM ${src}.user_group s JOIN main.user_group m ON m.name = s.name;
    INSERT INTO map_ip SELECT s.id, m.id FROM ${src}.client_ip s JOIN main.client_ip m ON m.address = s.address;
    ${hasNodes ? `INSERT INTO map_node SELECT s.id, m.id FROM ${src}.node s JOIN main.node m ON m.name = s.name;` : ''}
  `)
  const nodeColumn = columnsOf(db, src, 'request').includes('node_id') ? 'r.node_id' : 'NULL'
  let fallback: number | null = null
  let unnamed = db
    .prepare(`SELECT min(time) FROM ${src}.request r WHERE r.id > ? AND ${nodeColumn} IS NULL`)
    .pluck()
    .get(since) as number | null
  // Rollups of requests without a node, whose rows may have been pruned, need the name too.
  if (unnamed === null && since === 0 && columnsOf(db, src, 'rollup_day').length > 0) {
    const day = db
      .prepare(`SELECT min(day) FROM ${src}.rollup_day WHERE node_id = 0`)
      .pluck()
      .get() as number | null
    if (day !== null) unnamed = day * 86_400_000
  }
  if (unnamed !== null) {
    db.prepare(
      `INSERT INTO main.node (name, first_seen) VALUES (?, ?)
         ON CONFLICT (name) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen)`,
    ).run(source.label, unnamed)
    fallback = db
      .prepare('SELECT id FROM main.node WHERE name = ?')
      .pluck()
      .get(source.label) as number
  }
  const weight = columnsOf(db, src, 'request').includes('weight') ? 'r.weight' : '1'
  db.prepare(
    `INSERT INTO main.request
       (endpoint_id, time, duration_us, status, version_id, user_group_id, client_ip_id, aborted, node_id, weight)
     SELECT e.dst, r.time, r.duration_us, r.status, v.dst, u.dst, i.dst, r.aborted, coalesce(n.dst, ?), ${weight}
     FROM ${src}.request r
     JOIN temp.map_endpoint e ON e.src = r.endpoint_id
     JOIN temp.map_version v ON v.src = r.version_id
     LEFT JOIN temp.map_user u ON u.src = r.user_group_id
     LEFT JOIN temp.map_ip i ON i.src = r.client_ip_id
     LEFT JOIN temp.map_node n ON n.src = ${nodeColumn}
     WHERE r.id > ?
     ORDER BY r.id`,
  ).run(fallback, since)
  return fallback
}
