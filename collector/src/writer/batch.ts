/*
 * The rows a collector hands to its writer: columns in one ArrayBuffer
 * (transferred to the writer thread, not copied) and, per batch, the distinct
 * user groups and IPs its rows refer to by index.
 */
import type { MonitorLevel } from '../schema/types.js'
import { intern, type HeldRequests } from './held-requests.js'
import type { EndpointState } from '../store/metrics-store.js'
import type { OutlierRecord } from '../outliers/watch.js'
import type { ProfileRecord } from '../profiles/sampler.js'

/** An endpoint as the collector defines it for the writer; its slot is its place in the list. */
export interface EndpointDefinition {
  method: string
  route: string
  level: MonitorLevel
}

/** A monitoring level the file holds: what the writer tells the collector. */
export type EndpointLevel = [method: string, route: string, level: MonitorLevel]

/** What the collector hands to the writer every flushInterval. */
export interface Batch {
  /** definitions of the endpoints of slots firstSlot, firstSlot + 1, ... */
  firstSlot: number
  endpoints: EndpointDefinition[]
  /** request rows in `buffer` */
  count: number
  capacity: number
  buffer: ArrayBuffer
  /** the names the rows' group and IP columns point to (-1: none) */
  groups: string[]
  ips: string[]
  /** (slot, last request time) of the endpoints requested since the last batch */
  touched: Float64Array
  /** slots of the endpoints discovered from the app's routes since the last batch */
  discovered: Int32Array
  /** outliers completed since the last batch (level 2) */
  outliers: OutlierRecord[]
  /** CPU samples attributed since the last batch, per endpoint and hour (level 3) */
  profiles: ProfileRecord[]
}

/** Bytes of one row: time and duration (float64), endpoint, group and IP (int32), status, aborted. */
const ROW_BYTES = 8 + 8 + 4 + 4 + 4 + 2 + 1

interface Columns {
  time: Float64Array
  duration: Float64Array
  endpoint: Int32Array
  group: Int32Array
  ip: Int32Array
  status: Uint16Array
  aborted: Uint8Array
}

/** The columns of a batch buffer; the wider types come first so that each view is aligned. */
function columns(buffer: ArrayBuffer, capacity: number): Columns {
  return {
    time: new Float64Array(buffer, 0, capacity),
    duration: new Float64Array(buffer, 8 * capacity, capacity),
    endpoint: new Int32Array(buffer, 16 * capacity, capacity),
    group: new Int32Array(buffer, 20 * capacity, capacity),
    ip: new Int32Array(buffer, 24 * capacity, capacity),
    status: new Uint16Array(buffer, 28 * capacity, capacity),
    aborted: new Uint8Array(buffer, 30 * capacity, capacity),
  }
}

const MIN_CAPACITY = 256

/** The request rows buffered since the last hand-over, as columns. */
export class RowBatch {
  count = 0
  private capacity: number
  private buffer: ArrayBuffer
  private c: Columns
  private groupIndex = new Map<string, number>()
  private groups: string[] = []
  private ipIndex = new Map<string, number>()
  private ips: string[] = []

  constructor(capacity = MIN_CAPACITY) {
    this.capacity = capacity
    this.buffer = new ArrayBuffer(capacity * ROW_BYTES)
    this.c = columns(this.buffer, capacity)
  }

  push(
    slot: number,
    time: number,
    durationUs: number,
    status: number,
    group: string | null,
    ip: string | null,
    /** ROW_ABORTED, ROW_OUTLIER (retention/sampler.ts) */
    flags: number,
  ): void {
    if (this.count === this.capacity) this.grow()
    const i = this.count++
    const c = this.c
    c.time[i] = time
    c.duration[i] = durationUs
    c.endpoint[i] = slot
    c.status[i] = status
    c.aborted[i] = flags
    c.group[i] = group === null ? -1 : intern(group, this.groupIndex, this.groups)
    c.ip[i] = ip === null ? -1 : intern(ip, this.ipIndex, this.ips)
  }

  private grow(): void {
    const capacity = this.capacity * 2
    const buffer = new ArrayBuffer(capacity * ROW_BYTES)
    const c = columns(buffer, capacity)
    for (const name of Object.keys(c) as Array<keyof Columns>) c[name].set(this.c[name])
    this.capacity = capacity
    this.buffer = buffer
    this.c = c
  }

  /**
   * The rows so far (their buffer is the caller's now), leaving an empty batch
   * sized for as many rows as this one held.
   */
  take(): Pick<Batch, 'count' | 'capacity' | 'buffer' | 'groups' | 'ips'> {
    const taken = {
      count: this.count,
      capacity: this.capacity,
      buffer: this.buffer,
      groups: this.groups,
      ips: this.ips,
    }
    let capacity = MIN_CAPACITY
    while (capacity < this.count) capacity *= 2
    this.count = 0
    this.capacity = capacity
    this.buffer = new ArrayBuffer(capacity * ROW_BYTES)
    this.c = columns(this.buffer, capacity)
    this.groupIndex = new Map()
    this.groups = []
    this.ipIndex = new Map()
    this.ips = []
    return taken
  }
}

/**
 * Appends a batch's rows to the requests held for writing (`into`), column by
 * column. Rows of an endpoint that `keep` refuses are left out; returns how many.
 */
export function decodeRows(
  batch: Batch,
  slots: readonly EndpointState[],
  keep: (endpoint: EndpointState) => boolean,
  into: HeldRequests,
): number {
  const c = columns(batch.buffer, batch.capacity)
  // The batch's names as indexes into the held requests' names: looked up once a name
  // (not once a row), at its first row kept (-1: not yet), so that the names of rows
  // left out are not written.
  const groups = new Int32Array(batch.groups.length).fill(-1)
  const ips = new Int32Array(batch.ips.length).fill(-1)
  let n = into.reserve(batch.count)
  let skipped = 0
  for (let i = 0; i < batch.count; i++) {
    const endpoint = slots[c.endpoint[i]!]!
    if (!keep(endpoint)) {
      skipped++
      continue
    }
    const group = c.group[i]!
    const ip = c.ip[i]!
    into.endpoint[n] = endpoint
    into.time[n] = c.time[i]!
    into.durationUs[n] = c.duration[i]!
    into.status[n] = c.status[i]!
    into.aborted[n] = c.aborted[i]!
    if (group !== -1 && groups[group] === -1) groups[group] = into.groupOf(batch.groups[group]!)
    if (ip !== -1 && ips[ip] === -1) ips[ip] = into.ipOf(batch.ips[ip]!)
    into.group[n] = group === -1 ? -1 : groups[group]!
    into.ip[n] = ip === -1 ? -1 : ips[ip]!
    n++
  }
  into.count = n
  return skipped
}
