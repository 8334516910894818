/*
 * The requests a writer holds until they are written, as columns. The writer
 * thread decodes each batch straight into these and MetricsStore inserts from
 * them: no object per request between the batch's columns and the store's,
 * and the file's id of each user group and IP looked up once a write, not
 * once a request.
 */
import type { EndpointState, PendingRequest } from '../store/metrics-store.js'
import type { OutlierRecord } from '../outliers/watch.js'
import type { ProfileRecord } from '../profiles/sampler.js'

/** An endpoint's hour of CPU samples held for writing (level 3). */
export interface HeldProfile {
  endpoint: EndpointState
  record: ProfileRecord
}

/** An outlier held for writing, with its endpoint. */
export interface HeldOutlier {
  endpoint: EndpointState
  record: OutlierRecord
}

const MIN_CAPACITY = 1024

export class HeldRequests {
  count = 0
  endpoint: EndpointState[] = []
  time = new Float64Array(MIN_CAPACITY)
  durationUs = new Float64Array(MIN_CAPACITY)
  status = new Uint16Array(MIN_CAPACITY)
  aborted = new Uint8Array(MIN_CAPACITY)
  /** index into `groups` / `ips`; -1: none */
  group = new Int32Array(MIN_CAPACITY)
  ip = new Int32Array(MIN_CAPACITY)
  /** the distinct user groups and IPs of the rows held (the store looks each up once a write) */
  groups: string[] = []
  ips: string[] = []
  private groupIndex = new Map<string, number>()
  private ipIndex = new Map<string, number>()
  /** outliers (level 2), written with the requests */
  outliers: HeldOutlier[] = []
  /** profiles (level 3), merged into the file's with the requests */
  profiles: HeldProfile[] = []

  /** Room for `extra` more rows; returns the index of the first. */
  reserve(extra: number): number {
    const needed = this.count + extra
    if (needed > this.time.length) {
      let capacity = this.time.length * 2
      while (capacity < needed) capacity *= 2
      this.time = grown(this.time, new Float64Array(capacity))
      this.durationUs = grown(this.durationUs, new Float64Array(capacity))
      this.status = grown(this.status, new Uint16Array(capacity))
      this.aborted = grown(this.aborted, new Uint8Array(capacity))
      this.group = grown(this.group, new Int32Array(capacity))
      this.ip = grown(this.ip, new Int32Array(capacity))
    }
    return this.count
  }

  /** The index of a user group in `groups`, added on first sight. */
  groupOf(name: string): number {
    return intern(name, this.groupIndex, this.groups)
  }

  ipOf(name: string): number {
    return intern(name, this.ipIndex, this.ips)
  }

  push(request: PendingRequest): void {
    const i = this.reserve(1)
    this.endpoint[i] = request.endpoint
    this.time[i] = request.time
    this.durationUs[i] = request.durationUs
    this.status[i] = request.status
    this.aborted[i] = request.aborted
    this.group[i] = request.group === null ? -1 : this.groupOf(request.group)
    this.ip[i] = request.ip === null ? -1 : this.ipOf(request.ip)
    this.count = i + 1
  }

  /** Row `i` as an object (tests; the writer never makes one). */
  request(i: number): PendingRequest {
    const group = this.group[i]!
    const ip = this.ip[i]!
    return {
      endpoint: this.endpoint[i]!,
      time: this.time[i]!,
      durationUs: this.durationUs[i]!,
      status: this.status[i]!,
      group: group === -1 ? null : this.groups[group]!,
      ip: ip === -1 ? null : this.ips[ip]!,
      aborted: this.aborted[i] as 0 | 1,
    }
  }

  /** Forgets the rows (after they were written), keeping the columns' room. */
  clear(): void {
    this.count = 0
    this.outliers = []
    this.profiles = []
    this.endpoint = []
    this.groups = []
    this.ips = []
    this.groupIndex = new Map()
    this.ipIndex = new Map()
  }
}

function grown<T extends Float64Array | Uint16Array | Uint8Array | Int32Array>(old: T, next: T): T {
  next.set(old)
  return next
}

/** The index of `name` in `names`, appended on first sight. */
export function intern(name: string, index: Map<string, number>, names: string[]): number {
  let id = index.get(name)
  if (id === undefined) {
    id = names.length
    names.push(name)
    index.set(name, id)
  }
  return id
}
