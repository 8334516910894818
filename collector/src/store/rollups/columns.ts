/**
 * Requests as the rollups count them: the columns of the rows just inserted, and a
 * row as read back from the table.
 */
import { NO_ID } from '../../schema/rollup.js'

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
export type Row = [
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
