/**
 * Aggregate keys: the aggregates of a chunk of requests by time, endpoint, version
 * and node, and per user or IP and day.
 */
import { Aggregate, AggregateList } from './aggregate-list.js'

/** An empty aggregate (its list sets its index). */
export function aggregate(key: number[]): Aggregate {
  return {
    key,
    index: -1,
    requests: 0,
    errors4xx: 0,
    errors5xx: 0,
    sumUs: 0,
    minUs: Number.POSITIVE_INFINITY,
    maxUs: Number.NEGATIVE_INFINITY,
  }
}

/**
 * Map keys of the aggregates: one number packing (hour or day, endpoint,
 * version, node) when each fits its bits (the common case: no string per
 * request, and this runs for every request the writer stores), else the
 * parts' text. 21 bits of hour (239 years), 14 of endpoint id, 10 of version
 * id, 8 of node id; the literals below are those powers of two.
 */
export type MapKey = number | string

export function timeKey(time: number, endpointId: number, versionId: number, node: number): MapKey {
  return time >= 0 &&
    time < 2_097_152 &&
    endpointId >= 0 &&
    endpointId < 16_384 &&
    versionId >= 0 &&
    versionId < 1024 &&
    node >= 0 &&
    node < 256
    ? ((time * 16_384 + endpointId) * 1024 + versionId) * 256 + node
    : `${time},${endpointId},${versionId},${node}`
}

/** Endpoint ids below this have a slot in TimeAggregates' recent list. */
export const RECENT_ENDPOINTS = 65_536

/**
 * Values of one chunk by (hour or day, endpoint, version, node). The rows of
 * a batch mostly share their hour, version and node, so the value each
 * endpoint used last is checked first, without making a key.
 */
export class TimeAggregates<T extends { key: number[] }> {
  readonly map = new Map<MapKey, T>()
  private readonly recent: Array<T | undefined> = []

  constructor(private readonly make: (key: number[]) => T) {}

  of(time: number, endpointId: number, versionId: number, node: number): T {
    const recent = endpointId < RECENT_ENDPOINTS ? this.recent[endpointId] : undefined
    if (
      recent !== undefined &&
      recent.key[1] === time &&
      recent.key[2] === versionId &&
      recent.key[3] === node
    ) {
      return recent
    }
    const mapKey = timeKey(time, endpointId, versionId, node)
    let found = this.map.get(mapKey)
    if (found === undefined)
      this.map.set(mapKey, (found = this.make([endpointId, time, versionId, node])))
    if (endpointId >= 0 && endpointId < RECENT_ENDPOINTS) this.recent[endpointId] = found
    return found
  }
}

/**
 * An hour's aggregate, with its requests per status (rollup_status sums them
 * over versions) and the smallest and largest id of its requests (schema 5:
 * where readers find them without an index on the requests).
 */
export interface HourAggregate extends Aggregate {
  /** (status, requests) pairs: an hour sees a handful of statuses */
  statuses: number[]
  firstId: number
  lastId: number
}

/** The per-client aggregates of one (day, endpoint, version, node): clients by id (0: none). */
export interface ClientGroup {
  key: number[]
  clients: Map<number, Aggregate>
}

/**
 * Per-client (user or IP) aggregates of (day, endpoint, client, version,
 * node) not written yet: the writer's pending ones, or one chunk's.
 */
export class ClientAggregates {
  readonly list = new AggregateList<Aggregate>()
  private readonly groups = new TimeAggregates<ClientGroup>((key) => ({ key, clients: new Map() }))

  count(
    day: number,
    endpointId: number,
    client: number,
    versionId: number,
    node: number,
    durationUs: number,
    status: number,
    bucket: number,
  ): void {
    const group = this.groups.of(day, endpointId, versionId, node)
    let found = group.clients.get(client)
    if (found === undefined) {
      found = this.list.add(aggregate([endpointId, day, client, versionId, node]))
      group.clients.set(client, found)
    }
    this.list.count(found, durationUs, status, bucket)
  }
}

/** The per-user and per-IP aggregates of a pass; no IPs where the file has no rollup_ip_day. */
export interface Clients {
  users: ClientAggregates | undefined
  ips: ClientAggregates | undefined
}
