/*
 * Inserts request rows into the request table several to a statement. Each
 * statement run through better-sqlite3 costs a call into the addon and a
 * statement step and reset: one row a statement cost about 1.7 µs a row
 * here, 32 rows a statement about 1.0 (scratch benchmark, 1M rows in
 * batches of 5,000, CPU time, alternated; 10 rows 1.1-1.2, 50 to 250 no
 * better than 32). The writer thread and the bulk writer both insert so.
 */
import type Database from 'better-sqlite3'
import type { RollupColumns } from './rollup-store.js'
import { NO_ID } from './schema/rollup.js'

/** The request columns of a batch (a RollupColumns, or its arrays after crossing threads). */
export type RequestColumns = Pick<
  RollupColumns,
  | 'count'
  | 'id'
  | 'endpointId'
  | 'time'
  | 'durationUs'
  | 'status'
  | 'versionId'
  | 'nodeId'
  | 'userGroupId'
  | 'clientIpId'
>

/** Rows a full statement inserts. */
export const ROWS_PER_STATEMENT = 32

const COLUMNS =
  '(id, endpoint_id, time, duration_us, status, version_id, user_group_id, client_ip_id, aborted, node_id)'
const ROW = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'
const WIDTH = 10

export class RequestInsert {
  private readonly full: Database.Statement
  private readonly single: Database.Statement
  /** the bound values of one full statement, reused */
  private readonly params: Array<number | null> = new Array<number | null>(
    ROWS_PER_STATEMENT * WIDTH,
  )

  constructor(db: Pick<Database.Database, 'prepare'>) {
    this.full = db.prepare(
      `INSERT INTO request ${COLUMNS} VALUES ${Array<string>(ROWS_PER_STATEMENT).fill(ROW).join(', ')}`,
    )
    this.single = db.prepare(`INSERT INTO request ${COLUMNS} VALUES ${ROW}`)
  }

  /**
   * Inserts rows [0, rows.count) with the ids they carry (the caller's
   * transaction's: the ids its rollups count); ids of NO_ID are written as
   * NULL. `aborted[i]` is row i's request.aborted.
   */
  run(rows: RequestColumns, aborted: Uint8Array): void {
    const params = this.params
    const whole = rows.count - (rows.count % ROWS_PER_STATEMENT)
    for (let start = 0; start < whole; start += ROWS_PER_STATEMENT) {
      for (let j = 0; j < ROWS_PER_STATEMENT; j++)
        this.fill(params, j * WIDTH, rows, start + j, aborted)
      this.full.run(params)
    }
    const one = params.slice(0, WIDTH)
    for (let i = whole; i < rows.count; i++) {
      this.fill(one, 0, rows, i, aborted)
      this.single.run(one)
    }
  }

  private fill(
    into: Array<number | null>,
    at: number,
    rows: RequestColumns,
    i: number,
    aborted: Uint8Array,
  ): void {
    into[at] = rows.id[i]!
    into[at + 1] = rows.endpointId[i]!
    into[at + 2] = rows.time[i]!
    into[at + 3] = rows.durationUs[i]!
    into[at + 4] = rows.status[i]!
    into[at + 5] = rows.versionId[i]!
    into[at + 6] = nullable(rows.userGroupId[i]!)
    into[at + 7] = nullable(rows.clientIpId[i]!)
    into[at + 8] = aborted[i]!
    into[at + 9] = nullable(rows.nodeId[i]!)
  }
}

function nullable(id: number): number | null {
  return id === NO_ID ? null : id
}
