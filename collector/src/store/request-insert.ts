/*
 * Inserts request rows into the request table 32 to a statement: each
 * statement run through better-sqlite3 costs a call into the addon and a
 * step and reset. The writer thread and the bulk writer both insert so.
 *
 * The values go to run() as arguments, not as one array: better-sqlite3
 * reads an array's elements through V8's generic property lookup. The
 * rollup upserts bind so too.
 *
 * Fewer values a row: the id is left to SQLite, which appends without
 * looking it up (an explicit one is checked for a duplicate), and a
 * connection's constant version and node are part of the statement's text.
 * SQLite chooses one more than the largest id, which is the id the caller
 * counted the row with; run() checks that it did, and throws otherwise.
 * The figures behind these choices: docs/benchmarks.md.
 */
import type Database from 'better-sqlite3'
import type { RollupColumns } from './rollups/index.js'
import { NO_ID } from '../schema/rollup.js'
import { ROW_ABORTED } from '../retention/sampler.js'

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

/**
 * A version and node every row of the connection has (the collector's
 * writer), written into the statement; without them each row binds its own
 * (the bulk writer's rows come from several versions).
 */
export interface ConstantColumns {
  versionId: number
  nodeId: number
}

/** The columns a row gives, in the order it binds them; the last two may be constant. */
const COLUMNS = [
  'endpoint_id',
  'time',
  'duration_us',
  'status',
  'user_group_id',
  'client_ip_id',
  'aborted',
  'version_id',
  'node_id',
]

export class RequestInsert {
  private readonly full: Database.Statement
  private readonly single: Database.Statement
  /** values a row binds */
  private readonly width: number
  /** whether each row binds its version and node (no constant columns) */
  private readonly rowsBindVersion: boolean
  /** the bound values of one full statement, reused */
  private readonly params: Array<number | null>

  constructor(db: Pick<Database.Database, 'prepare'>, constant?: ConstantColumns) {
    let row: string
    if (constant === undefined) {
      this.width = COLUMNS.length
      row = `(${COLUMNS.map(() => '?').join(', ')})`
    } else {
      for (const id of [constant.versionId, constant.nodeId]) {
        if (!Number.isSafeInteger(id)) throw new TypeError(`routemeter: ${id} is not an id`)
      }
      this.width = COLUMNS.length - 2
      row = `(${Array<string>(this.width).fill('?').join(', ')}, ${constant.versionId}, ${nullable(constant.nodeId) ?? 'NULL'})`
    }
    this.rowsBindVersion = constant === undefined
    const insert = `INSERT INTO request (${COLUMNS.join(', ')}) VALUES `
    this.full = db.prepare(insert + Array<string>(ROWS_PER_STATEMENT).fill(row).join(', '))
    this.single = db.prepare(insert + row)
    this.params = new Array<number | null>(ROWS_PER_STATEMENT * this.width)
  }

  /**
   * Inserts rows [0, rows.count), which must carry the ids SQLite gives
   * them: one more than the largest in the table, then one more each (the
   * caller's transaction's; the ids its rollups count). Throws, having
   * inserted rows the caller's transaction then rolls back, if SQLite gave
   * others. Ids of NO_ID are written as NULL. `aborted[i]` holds row i's
   * flags (ROW_ABORTED is request.aborted). With constant columns, rows' versionId and nodeId are
   * not read.
   */
  run(rows: RequestColumns, aborted: Uint8Array): void {
    const { params, width } = this
    const whole = rows.count - (rows.count % ROWS_PER_STATEMENT)
    for (let start = 0; start < whole; start += ROWS_PER_STATEMENT) {
      for (let j = 0; j < ROWS_PER_STATEMENT; j++)
        this.fill(params, j * width, rows, start + j, aborted)
      checkId(this.full.run(...params), rows, start + ROWS_PER_STATEMENT - 1)
    }
    const one = params.slice(0, width)
    for (let i = whole; i < rows.count; i++) {
      this.fill(one, 0, rows, i, aborted)
      checkId(this.single.run(...one), rows, i)
    }
  }

  private fill(
    into: Array<number | null>,
    at: number,
    rows: RequestColumns,
    i: number,
    aborted: Uint8Array,
  ): void {
    into[at] = rows.endpointId[i]!
    into[at + 1] = rows.time[i]!
    into[at + 2] = rows.durationUs[i]!
    into[at + 3] = rows.status[i]!
    into[at + 4] = nullable(rows.userGroupId[i]!)
    into[at + 5] = nullable(rows.clientIpId[i]!)
    into[at + 6] = aborted[i]! & ROW_ABORTED
    if (!this.rowsBindVersion) return
    into[at + 7] = rows.versionId[i]!
    into[at + 8] = nullable(rows.nodeId[i]!)
  }
}

/** Throws unless SQLite gave the last row inserted the id row `i` carries. */
function checkId(result: Database.RunResult, rows: RequestColumns, i: number): void {
  if (result.lastInsertRowid !== rows.id[i]) {
    throw new Error(
      `routemeter: request ${rows.id[i]} was inserted as ${result.lastInsertRowid}: the ids counted do not follow the table's`,
    )
  }
}

function nullable(id: number): number | null {
  return id === NO_ID ? null : id
}
