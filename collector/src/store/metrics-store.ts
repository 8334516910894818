/* One class: the writer's connection, the statements of its transaction and the names it caches share their life. */
import Database from 'better-sqlite3'
import { mkdirSync, rmSync } from 'node:fs'
import { hostname } from 'node:os'
import { dirname, resolve } from 'node:path'
import type { OpenRequestStore, RequestStore } from './contract.js'
import { FileIdentity, type FileState } from './file-header.js'
import { HeldRequests } from '../writer/held-requests.js'
import { decodeProfile, encodeProfile, mergeProfiles, sampleCount } from '../profiles/folded.js'
import type { ProfileRecord } from '../profiles/sampler.js'
import { RequestInsert } from './request-insert.js'
import {
  invalidRequestRows,
  RollupColumns,
  rollUpRequests,
  rollUpUnstored,
  writePendingClientRollups,
} from './rollups/index.js'
import {
  parsePolicy,
  policyToWrite,
  POLICY_KEY,
  type ExplicitPolicy,
  type RetentionPolicy,
} from '../retention/policy.js'
import { Pruner, VACUUMS_KEY } from '../retention/pruner.js'
import { alwaysKept, Sampler } from '../retention/sampler.js'
import { checkSchema, migrate } from '../schema/migrate.js'
import { hourOf } from '../schema/rollup.js'
import type { MonitorLevel, VersionSource } from '../schema/types.js'

/** One request as buffered between two writes. */
export interface PendingRequest {
  endpoint: EndpointState
  time: number
  durationUs: number
  status: number
  group: string | null
  ip: string | null
  aborted: 0 | 1
}

/** What the collector knows of one endpoint; `id` is set once it is in the file. */
export interface EndpointState {
  id: number | undefined
  method: string
  route: string
  level: MonitorLevel
  /** ms since the epoch of the latest request not yet written */
  pendingLastRequested: number
}

export interface StoredEndpoint {
  id: number
  method: string
  route: string
  monitor_level: MonitorLevel
}

/** busy_timeout of the periodic writes, in ms */
export const WRITE_BUSY_TIMEOUT_MS = 100

/** Most user/IP names cached per connection before the cache starts over. */
const NAME_CACHE_LIMIT = 50_000

/** The user or IP that requests of users and IPs past `maxNewClients` are recorded under. */
export const OTHER_CLIENTS = '(other)'

/** New names of one kind (users or IPs) this connection may still add to the file this hour. */
class NameBudget {
  private hour = -1
  private added = 0
  /** names recorded as OTHER_CLIENTS since the limit was last reported (a batch's, once each) */
  limited = 0
  reportedHour = -1

  constructor(
    readonly kind: 'users' | 'IPs',
    readonly perHour: number,
  ) {}

  /** Takes one new name from this hour's budget; false when it is spent. */
  take(now: number): boolean {
    const hour = hourOf(now)
    if (hour !== this.hour) {
      this.hour = hour
      this.added = 0
    }
    if (this.added >= this.perHour) return false
    this.added++
    return true
  }
}

/** A table of names (users or IPs), its statements, the connection's cache and its budget. */
interface NameTable {
  cache: Map<string, number>
  insert: Database.Statement
  select: Database.Statement
  budget: NameBudget
}

/**
 * Opens (creating or migrating) a metrics file as the collector's writers do.
 * Throws, leaving the file as it was, for another application's file or a
 * newer Routemeter's.
 */
export function openForWriting(
  path: string,
  now = Date.now(),
  nativeBinding?: string,
): Database.Database {
  // Opening (and migrating a new file that another process may be creating) may wait 1 s.
  const db = new Database(path, {
    timeout: 1000,
    ...(nativeBinding === undefined ? {} : { nativeBinding }),
  })
  try {
    // Refuse another application's file, or a newer one, before WAL mode changes its header
    // (in one read transaction: another process may be creating the file right now).
    const version = db.transaction(() => checkSchema(db))()
    // A new file frees the pages of pruned rows (retention); it must be set before any table.
    if (version === 0) db.pragma('auto_vacuum = INCREMENTAL')
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    // better-sqlite3 turns foreign keys on: 5 lookups a request for ids a writer has just
    // read or written itself, in the same transaction.
    db.pragma('foreign_keys = OFF')
    // A new file's header reaches the disk, its application id included: see file-header.ts.
    if (migrate(db, now) === 0) db.pragma('wal_checkpoint(PASSIVE)')
    return db
  } catch (error) {
    db.close()
    throw error
  }
}

/** Opens the SQLite file a writer writes into (the default storage engine). */
export const openMetricsStore: OpenRequestStore = (config, now) =>
  new MetricsStore(
    config.database,
    config.version,
    now,
    undefined,
    config.node,
    config.maxNewClients,
    { retention: config.retention, sample: true },
  )

/** What a store does about retention and sampling. */
export interface RetentionSetup {
  /** the policy the collector's options set (written over the file's at open) */
  retention?: ExplicitPolicy | undefined
  /** whether raw rows are sampled as the file's policy says (the collector's writer; not tests or generators) */
  sample?: boolean
}

/**
 * The collector's connection to the metrics file: opens and migrates it,
 * and writes each batch in one transaction. Everything here is synchronous
 * (better-sqlite3) and runs from timers, never on a request's path.
 */
export class MetricsStore implements RequestStore {
  readonly path: string
  private readonly db: Database.Database
  /**
   * A read-only connection held open beside `db`: while it is, closing `db`
   * cannot checkpoint (SQLite's last connection does), and a read-only one
   * never does. So a file overwritten in place is let go without writing.
   */
  private readonly guard: Database.Database
  /** the file as opened, to notice it being deleted, replaced or overwritten */
  private readonly identity: FileIdentity | undefined
  /** ids of this connection's version and node in the file */
  readonly versionId: number
  readonly nodeId: number
  /** endpoints given an id by the transaction under way, undone if it rolls back */
  private readonly assigned: EndpointState[] = []
  private readonly groups: NameTable
  private readonly ips: NameTable
  /** the rows of the transaction under way, for the rollups (kept to reuse its arrays) */
  private readonly inserted = new RollupColumns()
  /** requests given as objects (PendingRequest[]), as the write takes them */
  private readonly fromObjects = new HeldRequests()
  private readonly insertRequests: RequestInsert
  private readonly maxRequestId: Database.Statement
  private readonly insertEndpoint: Database.Statement
  private readonly selectEndpoint: Database.Statement
  private readonly touchEndpoint: Database.Statement
  private readonly selectEndpoints: Database.Statement
  private readonly insertOutlier: Database.Statement
  private readonly readProfile: Database.Statement
  private readonly writeProfile: Database.Statement
  private readonly setWeight: Database.Statement
  private readonly vacuums: Database.Statement
  private readonly pruner: Pruner
  private readonly sampler: Sampler | undefined
  /** the file's retention policy, as last read */
  private policy: RetentionPolicy | undefined
  /** per held row: 0 sampled away, else the requests the row stands for */
  private weights = new Int32Array(1024)
  /** the rows of the transaction under way that are sampled away (ids 0), for the rollups */
  private readonly unstored = new RollupColumns()
  /** [id, weight] of the rows of the transaction under way that stand for more than one request */
  private readonly weighted: number[] = []
  private readonly writeBatch: (
    requests: HeldRequests,
    touched: EndpointState[],
    discovered: EndpointState[],
    now: number,
  ) => void

  /**
   * @param nativeBinding path of a better_sqlite3.node built for another ABI
   *   (the desktop app's Electron main process generates its demo file here)
   * @param node the machine the requests were served on (table `node`)
   * @param maxNewClients most new users (and, apart, IPs) written per hour; past it, `(other)`
   */
  constructor(
    path: string,
    version: { name: string; source: VersionSource; tags?: readonly string[] | undefined },
    now = Date.now(),
    nativeBinding?: string,
    node: string = hostname() || 'unknown',
    maxNewClients = Number.POSITIVE_INFINITY,
    retention: RetentionSetup = {},
  ) {
    this.path = resolve(path)
    mkdirSync(dirname(this.path), { recursive: true })
    const db = openForWriting(this.path, now, nativeBinding)
    try {
      db.prepare(
        'INSERT INTO version (name, source, first_seen) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING',
      ).run(version.name, version.source, now)
      this.versionId = (
        db.prepare('SELECT id FROM version WHERE name = ?').get(version.name) as { id: number }
      ).id
      // The tags found now: a tag added to a deployed commit names it from the next start on.
      if (version.tags !== undefined && version.tags.length > 0) {
        db.prepare('UPDATE version SET tags = ? WHERE id = ?').run(
          JSON.stringify(version.tags),
          this.versionId,
        )
      }
      db.prepare(
        'INSERT INTO node (name, first_seen) VALUES (?, ?) ON CONFLICT (name) DO NOTHING',
      ).run(node, now)
      this.nodeId = (
        db.prepare('SELECT id FROM node WHERE name = ?').get(node) as { id: number }
      ).id
      // The file's policy is every writer's; options given explicitly replace what they set.
      this.policy = db
        .transaction(() => {
          const stored = parsePolicy(
            db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(POLICY_KEY) as
              string | undefined,
          )
          const next = policyToWrite(stored, retention.retention, now)
          if (next === undefined) return stored
          db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(
            POLICY_KEY,
            JSON.stringify(next),
          )
          return next
        })
        .immediate()
    } catch (error) {
      db.close()
      throw error
    }
    this.db = db
    try {
      this.guard = new Database(this.path, {
        readonly: true,
        fileMustExist: true,
        ...(nativeBinding === undefined ? {} : { nativeBinding }),
      })
      this.guard.pragma('schema_version') // a first read, which takes its lock on the file
    } catch (error) {
      db.close()
      throw error
    }
    this.vacuums = db.prepare('SELECT value FROM meta WHERE key = ?').pluck()
    this.identity = FileIdentity.of(this.path, this.vacuumCount())
    this.pruner = new Pruner(db)
    this.sampler = retention.sample === true ? new Sampler() : undefined
    this.setWeight = db.prepare('UPDATE request SET weight = ? WHERE id = ?')
    // Writes run on the app's thread: while another process holds the lock, a write
    // gives up after this long and the collector retries later, rather than stall the app.
    this.setBusyTimeout(WRITE_BUSY_TIMEOUT_MS)

    this.insertRequests = new RequestInsert(db, { versionId: this.versionId, nodeId: this.nodeId })
    this.maxRequestId = db.prepare('SELECT coalesce(max(id), 0) FROM request').pluck()
    this.insertEndpoint = db.prepare(
      `INSERT INTO endpoint (method, route, monitor_level, first_seen) VALUES (?, ?, ?, ?)
       ON CONFLICT (method, route) DO NOTHING`,
    )
    this.selectEndpoint = db.prepare(
      'SELECT id, monitor_level FROM endpoint WHERE method = ? AND route = ?',
    )
    this.touchEndpoint = db.prepare(
      `UPDATE endpoint SET last_requested = max(coalesce(last_requested, 0), ?) WHERE id = ?`,
    )
    this.groups = {
      cache: new Map(),
      insert: db.prepare('INSERT INTO user_group (name) VALUES (?) ON CONFLICT DO NOTHING'),
      select: db.prepare('SELECT id FROM user_group WHERE name = ?').pluck(),
      budget: new NameBudget('users', maxNewClients),
    }
    this.ips = {
      cache: new Map(),
      insert: db.prepare('INSERT INTO client_ip (address) VALUES (?) ON CONFLICT DO NOTHING'),
      select: db.prepare('SELECT id FROM client_ip WHERE address = ?').pluck(),
      budget: new NameBudget('IPs', maxNewClients),
    }
    this.selectEndpoints = db.prepare('SELECT id, method, route, monitor_level FROM endpoint')
    this.insertOutlier = db.prepare(
      `INSERT INTO outlier (endpoint_id, time, duration_us, threshold_us, caught_us, status,
         version_id, node_id, user_group_id, client_ip_id, method, url, cause, cause_detail, context,
         profile)
       VALUES (?, ?, ?, ?, ?, ?, ${this.versionId}, ${this.nodeId}, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )

    const profileKey = `endpoint_id = ? AND hour = ? AND version_id = ${this.versionId} AND node_id = ${this.nodeId}`
    this.readProfile = db.prepare(`SELECT tree FROM profile WHERE ${profileKey}`).pluck()
    this.writeProfile = db.prepare(
      `INSERT OR REPLACE INTO profile (endpoint_id, hour, version_id, node_id, samples, interval_us, tree)
       VALUES (?, ?, ${this.versionId}, ${this.nodeId}, ?, ?, ?)`,
    )

    this.writeBatch = db.transaction(
      (
        requests: HeldRequests,
        touched: EndpointState[],
        discovered: EndpointState[],
        now: number,
      ) => {
        for (const endpoint of discovered) this.ensureEndpoint(endpoint, now)
        for (const endpoint of touched) {
          this.ensureEndpoint(endpoint, now)
          // Endpoints written again into a reopened file may have no request yet: keep NULL.
          if (endpoint.pendingLastRequested > 0) {
            this.touchEndpoint.run(endpoint.pendingLastRequested, endpoint.id)
          }
        }
        // The file's ids of the rows' user groups and IPs: one lookup a name, not a row.
        const groupIds = requests.groups.map((name) => this.nameId(name, this.groups, now))
        const ipIds = requests.ips.map((name) => this.nameId(name, this.ips, now))
        const inserted = this.inserted
        inserted.clear()
        this.unstored.clear()
        this.weighted.length = 0
        const sampled = this.sample(requests, now)
        // Ids as SQLite will choose them (one more than the largest, in the write lock),
        // so that the rollups know them; the insert checks that SQLite did.
        this.fillInserted(requests, groupIds, ipIds, this.maxRequestId.get() as number, sampled)
        this.insertRequests.run(inserted, sampled ? this.keptFlags(requests) : requests.aborted)
        for (let i = 0; i < this.weighted.length; i += 2) {
          this.setWeight.run(this.weighted[i + 1], this.weighted[i])
        }
        // The views read the rollups: they count this batch in the same transaction,
        // from the rows just inserted rather than read back, and the rows sampled away too.
        rollUpRequests(db, undefined, { inserted })
        rollUpUnstored(db, this.unstored)
        for (const { endpoint, record } of requests.outliers) {
          this.insertOutlier.run(
            this.ensureEndpoint(endpoint, now),
            record.time,
            record.durationUs,
            record.thresholdUs,
            record.caughtUs,
            record.status,
            record.group === null ? null : this.nameId(record.group, this.groups, now),
            record.ip === null ? null : this.nameId(record.ip, this.ips, now),
            record.method,
            record.url,
            record.cause,
            record.causeDetail,
            record.context,
            record.profile === undefined ? null : encodeProfile(record.profile),
          )
        }
        for (const { endpoint, record } of requests.profiles)
          this.mergeProfile(endpoint, record, now)
      },
    ).immediate
  }

  /** Adds an hour of an endpoint's CPU samples to the file's profile of that hour (level 3). */
  private mergeProfile(endpoint: EndpointState, record: ProfileRecord, now: number): void {
    const id = this.ensureEndpoint(endpoint, now)
    const stored = this.readProfile.get(id, record.hour) as Uint8Array | undefined
    let profile = record.profile
    if (stored !== undefined) {
      try {
        profile = mergeProfiles(decodeProfile(stored), profile)
      } catch {
        // A row that does not decode is replaced: the new samples are kept.
      }
    }
    this.writeProfile.run(
      id,
      record.hour,
      sampleCount(profile),
      profile.intervalUs,
      encodeProfile(profile),
    )
  }

  /**
   * The held requests as the rows to insert (`inserted`), with ids from
   * `lastId + 1`. A method of its own: as part of the transaction's function,
   * whose code after the loop had not run when V8 compiled the loop, the
   * loop bailed out of its compiled code once a batch (--trace-deopt) and ran
   * unoptimized.
   */
  private fillInserted(
    requests: HeldRequests,
    groupIds: readonly number[],
    ipIds: readonly number[],
    lastId: number,
    sampled: boolean,
  ): void {
    const inserted = this.inserted
    const weights = this.weights
    const { endpoint, time, durationUs, status, group, ip } = requests
    let id = lastId
    for (let i = 0; i < requests.count; i++) {
      const g = group[i]!
      const p = ip[i]!
      const weight = sampled ? weights[i]! : 1
      if (weight > 1) this.weighted.push(id + 1, weight)
      ;(weight === 0 ? this.unstored : inserted).push(
        weight === 0 ? 0 : ++id,
        this.ensureEndpoint(endpoint[i]!, time[i]!),
        time[i]!,
        durationUs[i]!,
        status[i]!,
        this.versionId,
        this.nodeId,
        g === -1 ? null : groupIds[g]!,
        p === -1 ? null : ipIds[p]!,
      )
    }
  }

  /**
   * Chooses the held rows to store (this.weights) when the file's policy
   * samples; false when every row is stored.
   */
  private sample(requests: HeldRequests, now: number): boolean {
    const rate = this.policy?.sampleRowsPerSecond ?? null
    if (this.sampler === undefined || rate === null) return false
    if (this.weights.length < requests.count) this.weights = new Int32Array(requests.time.length)
    const dropped = this.sampler.choose(
      requests.count,
      (i) => requests.endpoint[i]!,
      (i) => alwaysKept(requests.status[i]!, requests.aborted[i]!),
      rate,
      now,
      this.weights,
    )
    return dropped > 0
  }

  /** The flags of the stored rows only, in the order they are inserted. */
  private keptFlags(requests: HeldRequests): Uint8Array {
    const flags = new Uint8Array(this.inserted.count)
    let n = 0
    for (let i = 0; i < requests.count; i++) {
      if (this.weights[i] !== 0) flags[n++] = requests.aborted[i]!
    }
    return flags
  }

  /** Inserts an endpoint the file does not have yet; the file's level wins over ours. */
  private ensureEndpoint(endpoint: EndpointState, now: number): number {
    if (endpoint.id !== undefined) return endpoint.id
    this.insertEndpoint.run(endpoint.method, endpoint.route, endpoint.level, now)
    const row = this.selectEndpoint.get(endpoint.method, endpoint.route) as {
      id: number
      monitor_level: MonitorLevel
    }
    endpoint.id = row.id
    endpoint.level = row.monitor_level
    this.assigned.push(endpoint)
    return row.id
  }

  /**
   * The file's id of a user or IP name, added if new and this hour's budget
   * allows; else the id of OTHER_CLIENTS (not cached: next hour it may get its own).
   */
  private nameId(name: string, table: NameTable, now: number): number {
    const { cache, insert, select, budget } = table
    let id = cache.get(name)
    if (id !== undefined) return id
    id = select.get(name) as number | undefined
    if (id === undefined) {
      if (name !== OTHER_CLIENTS && !budget.take(now)) {
        budget.limited++
        return this.nameId(OTHER_CLIENTS, table, now)
      }
      insert.run(name)
      id = select.get(name) as number
    }
    if (cache.size >= NAME_CACHE_LIMIT) cache.clear()
    cache.set(name, id)
    return id
  }

  /**
   * A message when names were recorded under OTHER_CLIENTS since the last
   * one, at most once an hour per kind; undefined otherwise.
   */
  takeClientLimitReport(now = Date.now()): string | undefined {
    const hour = hourOf(now)
    const parts: string[] = []
    for (const { budget } of [this.groups, this.ips]) {
      if (budget.limited === 0 || budget.reportedHour === hour) continue
      budget.reportedHour = hour
      parts.push(
        `more than ${budget.perHour} new ${budget.kind} this hour (maxNewClients): ` +
          `further ones are recorded as "${OTHER_CLIENTS}"`,
      )
      budget.limited = 0
    }
    return parts.length === 0 ? undefined : parts.join('; ')
  }

  /**
   * The ids of user groups (`user_group`) or client IPs (`client_ip`), in
   * the order of `names`; those not in the file yet are added.
   */
  idsOf(table: 'user_group' | 'client_ip', names: readonly string[], now = Date.now()): number[] {
    const nameTable = table === 'user_group' ? this.groups : this.ips
    let ids: number[] = []
    this.undoable(() => {
      ids = this.db.transaction(() => names.map((name) => this.nameId(name, nameTable, now)))()
    })
    return ids
  }

  /**
   * Writes, in one IMMEDIATE transaction: endpoints discovered from the app's
   * routes, requests, and the last request time of the endpoints they touched.
   */
  write(
    requests: HeldRequests | readonly PendingRequest[],
    touched: EndpointState[],
    discovered: EndpointState[] = [],
    now = Date.now(),
  ): void {
    let held: HeldRequests
    if (requests instanceof HeldRequests) held = requests
    else {
      held = this.fromObjects
      held.clear()
      for (const request of requests) held.push(request)
    }
    this.undoable(() => this.writeBatch(held, touched, discovered, now))
  }

  /** Runs a transaction; if it rolls back, forgets the ids it handed out. */
  private undoable(transaction: () => void): void {
    this.assigned.length = 0
    try {
      transaction()
    } catch (error) {
      for (const endpoint of this.assigned) endpoint.id = undefined
      this.groups.cache.clear()
      this.ips.cache.clear()
      throw error
    } finally {
      this.assigned.length = 0
    }
  }

  /** Request rows of other programs left out of the rollups for values out of range (since opened). */
  invalidRequestRows(): number {
    return invalidRequestRows(this.db)
  }

  /** Changes whenever another connection commits: a cheap way to notice level changes. */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number
  }

  endpoints(): StoredEndpoint[] {
    return this.selectEndpoints.all() as StoredEndpoint[]
  }

  /** How long the next statements wait for another connection's lock. */
  setBusyTimeout(ms: number): void {
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.round(ms))}`)
  }

  /** Whether the file at the path is still the one opened, or was deleted, replaced or overwritten. */
  fileState(): FileState {
    return this.identity?.check(() => this.vacuumCount()) ?? 'same'
  }

  /** How many times a writer ran incremental vacuum on the file (meta `vacuums`). */
  private vacuumCount(): number {
    return Number(this.vacuums.get(VACUUMS_KEY) ?? 0)
  }

  /**
   * Applies the file's retention policy for at most about `budgetMs` (see
   * Pruner); re-reads the policy first, as the desktop app may have changed
   * it. Returns whether pruning is under way. Throws what SQLite throws.
   */
  maintain(now = Date.now(), budgetMs = 50): boolean {
    const policy = this.pruner.policy()
    if (policy !== undefined && policy.setAt !== this.policy?.setAt) this.pruner.soon()
    this.policy = policy
    return this.pruner.run(now, budgetMs)
  }

  /**
   * Closes the connection, after writing the per-user and per-IP counts it
   * holds in memory (the next connection would read those requests back).
   */
  close(): void {
    if (!this.db.open) return
    try {
      writePendingClientRollups(this.db)
    } catch {
      // busy, full or broken: the next writer reads those requests back instead
    }
    this.guard.close()
    this.db.close()
  }

  /**
   * Lets go of a file that was overwritten in place, writing nothing into
   * it: `db` closes while the guard keeps the file open (no checkpoint),
   * then the read-only guard. The -wal and -shm beside it are this
   * writer's, of the file that was there: applied to the new one they
   * would change it, so they go.
   */
  abandon(): void {
    if (!this.db.open) return
    this.db.close()
    this.guard.close()
    for (const suffix of ['-wal', '-shm']) rmSync(this.path + suffix, { force: true })
  }
}
