/*
 * Applies the retention policy to a metrics file from the writer's thread:
 * raw rows past their age, then the oldest raw rows while the file is over
 * its size cap, then rollups (past their age, or the oldest when nothing
 * raw is left and the file is still too large), then frees the space. Each
 * step is one short IMMEDIATE transaction; `run` stops after its time
 * budget and goes on at the next call, so the app's writes never wait long.
 */
import type Database from 'better-sqlite3'
import { hourOf } from '../schema/rollup.js'
import { rollupWatermark, userRollupWatermark } from '../store/rollups/index.js'
import { KEPT_SINCE_KEYS, parsePolicy, POLICY_KEY, type RetentionPolicy } from './policy.js'

/** Meta keys the pruner keeps (SCHEMA.md). */
export const PRUNED_THROUGH_KEY = 'pruned_through_request'
export const ROUND_KEY = 'prune_round_at'
export const VACUUMS_KEY = 'vacuums'

/** A process prunes at most this often; the others skip a round another one took. */
export const ROUND_INTERVAL_MS = 60_000
/** Request ids looked at per transaction (a rowid range: no index on time). */
const REQUEST_WINDOW = 4096
const OUTLIER_CHUNK = 1000
/** Pages freed per transaction by incremental vacuum (4 MB of 4 KB pages). */
const VACUUM_PAGES = 1024
/** Fewer free pages than this (1 MB of 4 KB pages) are left for new rows. */
const MIN_VACUUM_PAGES = 256
/** Under the cap the file is pruned down to this share of it, so that pruning is not every round. */
const CAP_LOW_WATER = 0.9

const HOUR_TABLES = ['rollup_hour', 'rollup_status'] as const
const DAY_TABLES = ['rollup_day', 'rollup_user_day', 'rollup_ip_day'] as const

export class Pruner {
  private steps: Generator<void, void, void> | undefined
  private nextRound = 0
  private readonly meta: Database.Statement
  private readonly setMeta: Database.Statement

  constructor(private readonly db: Database.Database) {
    this.meta = db.prepare('SELECT value FROM meta WHERE key = ?').pluck()
    this.setMeta = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)')
  }

  /** The policy in force (the file's); undefined when the file has none. */
  policy(): RetentionPolicy | undefined {
    return parsePolicy(this.meta.get(POLICY_KEY) as string | undefined)
  }

  /** Starts a round at the next run, even if one ran less than a minute ago (a new policy). */
  soon(): void {
    this.nextRound = 0
  }

  /**
   * Prunes for at most about `budgetMs`, one short transaction at a time.
   * Returns true while a round is under way. Throws what SQLite throws
   * (busy: the caller tries again later; the round goes on where it was).
   */
  run(now: number, budgetMs: number): boolean {
    if (this.steps === undefined) {
      if (now < this.nextRound) return false
      this.nextRound = now + ROUND_INTERVAL_MS
      const policy = this.claimRound(now)
      if (policy === undefined) return false
      this.steps = this.round(policy, now)
    }
    const deadline = performance.now() + budgetMs
    try {
      do {
        if (this.steps.next().done === true) {
          this.steps = undefined
          return false
        }
      } while (performance.now() < deadline)
    } catch (error) {
      // The round starts over next time: each of its steps is safe to repeat.
      this.steps = undefined
      throw error
    }
    return true
  }

  /**
   * Takes this round for this process unless another one took it less than
   * ROUND_INTERVAL_MS ago and the policy did not change since.
   */
  private claimRound(now: number): RetentionPolicy | undefined {
    return this.db
      .transaction(() => {
        const policy = this.policy()
        if (policy === undefined) return undefined
        const last = Number(this.meta.get(ROUND_KEY) ?? 0)
        if (now - last < ROUND_INTERVAL_MS && policy.setAt <= last) return undefined
        this.setMeta.run(ROUND_KEY, String(now))
        return policy
      })
      .immediate()
  }

  private *round(policy: RetentionPolicy, now: number): Generator<void, void, void> {
    // The requests the per-user rollups do not count yet must stay: readers add them.
    const countedThrough = Math.min(rollupWatermark(this.db), userRollupWatermark(this.db))
    if (policy.requestsMs !== null) {
      yield* this.pruneRequests(now - policy.requestsMs, countedThrough)
    }
    if (policy.outliersMs !== null) yield* this.pruneOutliers(now - policy.outliersMs)
    if (policy.profilesMs !== null) yield* this.pruneProfiles(now - policy.profilesMs)
    if (policy.rollupsMs !== null) yield* this.pruneRollups(now - policy.rollupsMs)
    if (policy.maxFileSizeBytes !== null)
      yield* this.capSize(policy.maxFileSizeBytes, countedThrough)
    yield* this.vacuum()
  }

  /**
   * Deletes the requests that started before `cutoff`, walking ids upward
   * from where the last round stopped (ids follow the order of writing,
   * about that of time), until a window holds a newer request.
   */
  private *pruneRequests(cutoff: number, countedThrough: number): Generator<void, void, void> {
    const count = this.db.prepare('SELECT count(*) FROM request WHERE id > ? AND id <= ?').pluck()
    const remove = this.db.prepare('DELETE FROM request WHERE id > ? AND id <= ? AND time < ?')
    const next = this.db.prepare('SELECT min(id) FROM request WHERE id > ?').pluck()
    let from = Number(this.meta.get(PRUNED_THROUGH_KEY) ?? 0)
    for (;;) {
      // Skip a gap of ids (rows deleted before, by the size cap or by hand) in one look.
      const first = next.get(from) as number | null
      if (first === null || first > countedThrough) break
      from = Math.max(from, first - 1)
      const to = Math.min(from + REQUEST_WINDOW, countedThrough)
      const allOld = this.db
        .transaction(() => {
          const rows = count.get(from, to) as number
          const deleted = remove.run(from, to, cutoff).changes
          if (deleted === rows) this.setMeta.run(PRUNED_THROUGH_KEY, String(to))
          return deleted === rows
        })
        .immediate()
      yield
      if (!allOld) break
      from = to
    }
    this.keptSince(KEPT_SINCE_KEYS.requests, cutoff)
  }

  private *pruneOutliers(cutoff: number): Generator<void, void, void> {
    const remove = this.db.prepare(
      `DELETE FROM outlier WHERE id IN (SELECT id FROM outlier WHERE time < ? ORDER BY time LIMIT ${OUTLIER_CHUNK})`,
    )
    while (this.db.transaction(() => remove.run(cutoff).changes).immediate() === OUTLIER_CHUNK)
      yield
    this.keptSince(KEPT_SINCE_KEYS.outliers, cutoff)
    yield
  }

  /** Level 3's profiles of the hours before `cutoff` (files before schema 9 have none). */
  private *pruneProfiles(cutoff: number): Generator<void, void, void> {
    const exists = this.db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'profile'")
      .get()
    if (exists === undefined) return
    const remove = this.db.prepare(
      `DELETE FROM profile WHERE (endpoint_id, hour, version_id, node_id) IN
         (SELECT endpoint_id, hour, version_id, node_id FROM profile WHERE hour < ? LIMIT ${OUTLIER_CHUNK})`,
    )
    const hour = hourOf(cutoff)
    while (this.db.transaction(() => remove.run(hour).changes).immediate() === OUTLIER_CHUNK) yield
    yield
  }

  /** Rollups of the hours (and whole days) before `cutoff`, one endpoint a transaction. */
  private *pruneRollups(cutoff: number): Generator<void, void, void> {
    const hour = hourOf(cutoff)
    yield* this.deleteRollupsBefore(hour, Math.floor(hour / 24))
    this.keptSince(KEPT_SINCE_KEYS.rollups, Math.ceil(hour / 24) * 86_400_000)
  }

  private *deleteRollupsBefore(hour: number, day: number): Generator<void, void, void> {
    const tables = this.tables()
    // Keys start with the endpoint: one range of each per endpoint (0: all endpoints' statuses).
    const endpoints = this.db
      .prepare('SELECT id FROM endpoint UNION ALL SELECT 0')
      .pluck()
      .all() as number[]
    const statements = [
      ...HOUR_TABLES.filter((t) => tables.has(t)).map((t) =>
        this.db.prepare(`DELETE FROM ${t} WHERE endpoint_id = ? AND hour < ${hour}`),
      ),
      ...DAY_TABLES.filter((t) => tables.has(t)).map((t) =>
        this.db.prepare(`DELETE FROM ${t} WHERE endpoint_id = ? AND day < ${day}`),
      ),
    ]
    for (const endpoint of endpoints) {
      this.db
        .transaction(() => {
          for (const statement of statements) statement.run(endpoint)
        })
        .immediate()
      yield
    }
  }

  /** Over the cap: the oldest requests, then the oldest outliers, then the oldest days of rollups. */
  private *capSize(cap: number, countedThrough: number): Generator<void, void, void> {
    const target = cap * CAP_LOW_WATER
    if (this.usedBytes() <= cap) return
    const window = this.db.prepare('SELECT max(time) FROM request WHERE id > ? AND id <= ?').pluck()
    const remove = this.db.prepare('DELETE FROM request WHERE id > ? AND id <= ?')
    const first = this.db.prepare('SELECT min(id) FROM request').pluck()
    let newest = 0
    while (this.usedBytes() > target) {
      const low = first.get() as number | null
      if (low === null || low > countedThrough) break
      const from = low - 1
      const to = Math.min(from + REQUEST_WINDOW, countedThrough)
      this.db
        .transaction(() => {
          newest = Math.max(newest, (window.get(from, to) as number | null) ?? 0)
          remove.run(from, to)
          this.setMeta.run(PRUNED_THROUGH_KEY, String(to))
        })
        .immediate()
      yield
    }
    if (newest > 0) this.keptSince(KEPT_SINCE_KEYS.requests, newest + 1)
    const oldestOutlier = this.db.prepare('SELECT min(time) FROM outlier').pluck()
    const removeOutliers = this.db.prepare(
      `DELETE FROM outlier WHERE id IN (SELECT id FROM outlier ORDER BY time LIMIT ${OUTLIER_CHUNK})`,
    )
    newest = 0
    while (this.usedBytes() > target) {
      const oldest = oldestOutlier.get() as number | null
      if (oldest === null) break
      this.db.transaction(() => removeOutliers.run()).immediate()
      newest = oldest
      yield
    }
    if (newest > 0) this.keptSince(KEPT_SINCE_KEYS.outliers, newest + 1)
    // Still over: whole days of rollups, oldest first. The long-lived record goes last.
    const firstDay = this.db.prepare('SELECT min(day) FROM rollup_day').pluck()
    while (this.usedBytes() > target) {
      const day = firstDay.get() as number | null
      if (day === null) break
      yield* this.deleteRollupsBefore((day + 1) * 24, day + 1)
      this.keptSince(KEPT_SINCE_KEYS.rollups, (day + 1) * 86_400_000)
    }
  }

  /** Gives free pages back to the disk when many are free (files created with incremental vacuum). */
  private *vacuum(): Generator<void, void, void> {
    if (Number(this.db.pragma('auto_vacuum', { simple: true })) !== 2) return
    const pages = () => Number(this.db.pragma('page_count', { simple: true }))
    const free = () => Number(this.db.pragma('freelist_count', { simple: true }))
    // Pages freed by a day's pruning are reused by the next day's rows: give back only a large share.
    if (free() < MIN_VACUUM_PAGES || free() * 8 < pages()) return
    while (free() > 0) {
      this.db
        .transaction(() => {
          // Writers that watch the file's size (file-header.ts) learn from this that it may shrink.
          this.setMeta.run(VACUUMS_KEY, String(Number(this.meta.get(VACUUMS_KEY) ?? 0) + 1))
          this.db.pragma(`incremental_vacuum(${VACUUM_PAGES})`)
        })
        .immediate()
      yield
    }
  }

  /** Bytes the file's rows take: its pages less the free ones. */
  usedBytes(): number {
    const pageSize = Number(this.db.pragma('page_size', { simple: true }))
    const pages = Number(this.db.pragma('page_count', { simple: true }))
    const free = Number(this.db.pragma('freelist_count', { simple: true }))
    return (pages - free) * pageSize
  }

  private keptSince(key: string, time: number): void {
    this.db
      .transaction(() => {
        const before = Number(this.meta.get(key) ?? 0)
        if (time > before) this.setMeta.run(key, String(Math.floor(time)))
      })
      .immediate()
  }

  private tables(): Set<string> {
    return new Set(
      this.db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .pluck()
        .all() as string[],
    )
  }
}
