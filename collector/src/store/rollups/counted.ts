/**
 * Rollups counted away from the file (the traffic generator's thread) and written
 * by the bulk writer, which must follow the file's watermarks exactly.
 */
import {
  ROLLUP_WATERMARK_KEY,
  RollupDb,
  USER_ROLLUP_ROWS,
  USER_ROLLUP_WATERMARK_KEY,
} from './common.js'
import { Clients } from './aggregates.js'
import { RollupColumns } from './columns.js'
import {
  CountedChunk,
  FIRST_CLIENT_TABLE,
  pendingClientsOf,
  RollupShape,
  statementsOf,
  writeCounted,
} from './statements.js'
import {
  clientsFor,
  countChunk,
  countedClients,
  rollupWatermark,
  userRollupWatermark,
} from './passes.js'

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
