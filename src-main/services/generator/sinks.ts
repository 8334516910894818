/**
 * Where generated requests go: the collector's MetricsStore on this thread (inline),
 * or the bulk writer's thread with rollups counted here (bulk).
 */
import Database from 'better-sqlite3'
import { type MonitorLevel } from 'routemeter/schema'
import { BulkWriter, RollupCounter } from 'routemeter/internal/bulk'
import {
  type EndpointState,
  MetricsStore,
  type PendingRequest,
  RollupColumns,
} from 'routemeter/writer'
import { MS_PER_MINUTE, type TrafficModel } from './model.js'

export function endpointState(method: string, route: string, level: MonitorLevel): EndpointState {
  return { id: undefined, method, route, level, pendingLastRequested: 0 }
}

/** Status codes of an endpoint as cumulative probabilities, for a pick with one draw. */
export interface CodeTable {
  codes: Int32Array
  cumulative: Float64Array
}

export function codeTable(codes: ReadonlyArray<readonly [number, number]>): CodeTable {
  const total = codes.reduce((sum, [, w]) => sum + w, 0)
  const table = { codes: new Int32Array(codes.length), cumulative: new Float64Array(codes.length) }
  let sum = 0
  codes.forEach(([code, w], i) => {
    sum += w / total
    table.codes[i] = code
    table.cumulative[i] = sum
  })
  table.cumulative[codes.length - 1] = 1
  return table
}

export function pickCode(table: CodeTable, r: number): number {
  let i = 0
  while (r >= table.cumulative[i]! && i < table.codes.length - 1) i++
  return table.codes[i]!
}

/** What the generator hands its requests to: the writer on this thread, or the bulk writer. */
export interface RequestSink {
  /** The app (re)starts as version `index`: its first request follows. */
  deploy(index: number): void
  push(
    endpoint: EndpointState,
    time: number,
    durationUs: number,
    status: number,
    user: string | null,
    ip: string,
    aborted: 0 | 1,
  ): void
  /** requests pushed and not flushed */
  readonly batched: number
  /** Writes what was pushed, as the collector's timer would at `now`. */
  flush(now: number): void
  close(): void
}

/** What both sinks know of the traffic. */
export interface SinkContext {
  path: string
  model: TrafficModel
  /** the model's endpoints', then the unmatched one's and /health's */
  allStates: EndpointState[]
  health: EndpointState
  unmatched: EndpointState
  /** the endpoints a version adds to the app */
  discoveredAt(index: number): EndpointState[]
  nativeBinding: string | undefined
  /** runs writer work, counted in writeMs */
  timed<T>(work: () => T): T
  /** requests written so far */
  progress(written: number): void
}

/** /health is requested all the time, at level 0: only its last request time is kept, per minute. */
export function touchHealth(context: SinkContext, now: number): void {
  context.health.pendingLastRequested = Math.floor(now / MS_PER_MINUTE) * MS_PER_MINUTE
}

/**
 * The collector's own path, on this thread: MetricsStore.write with its
 * rollups, one store per version as a restarted app opens the file.
 */
export function inlineSink(context: SinkContext): RequestSink {
  const { path, model, allStates, timed } = context
  let store: MetricsStore | undefined
  let holder: Database.Database | undefined
  let batch: PendingRequest[] = []
  let discovered: EndpointState[] = []
  let written = 0

  const flush = (now: number): void => {
    if (batch.length > 0) touchHealth(context, now)
    const touched = allStates.filter((s) => s.pendingLastRequested > 0)
    if (batch.length === 0 && touched.length === 0 && discovered.length === 0) return
    const requests = batch
    timed(() => store!.write(requests, touched, discovered, now))
    written += requests.length
    for (const s of touched) s.pendingLastRequested = 0
    batch = []
    discovered = []
    context.progress(written)
  }

  return {
    deploy(index) {
      const version = model.versions[index]!
      if (store !== undefined) {
        flush(version.at)
        timed(() => store!.close())
      }
      store = timed(() => new MetricsStore(path, version, version.at, context.nativeBinding))
      if (holder === undefined) {
        // A second connection, open throughout: each release's store.close() is then not the
        // last one, so it skips the full WAL checkpoint (about a tenth of the time with many
        // versions); SQLite's automatic checkpoints still run as the file grows.
        holder = new Database(path, {
          readonly: true,
          fileMustExist: true,
          ...(context.nativeBinding === undefined ? {} : { nativeBinding: context.nativeBinding }),
        })
      }
      discovered.push(...context.discoveredAt(index))
      flush(Math.max(version.at, model.from))
    },
    push(endpoint, time, durationUs, status, group, ip, aborted) {
      batch.push({ endpoint, time, durationUs, status, group, ip, aborted })
    },
    get batched() {
      return batch.length
    },
    flush,
    close() {
      try {
        if (store !== undefined) timed(() => store!.close())
      } finally {
        // The last connection: checkpoints the WAL into the file and removes it.
        if (holder !== undefined) timed(() => holder!.close())
      }
    },
  }
}

/**
 * The bulk writer: this thread makes the requests and counts their rollups
 * (RollupCounter, the writer's own counting), a thread of its own inserts
 * them. The versions, endpoints, users and IPs are written first, through
 * MetricsStore as each release's app would, so that rows carry their ids.
 * Not for a nativeBinding (Electron's main process): the thread loads Node's build.
 */
export function bulkSink(context: SinkContext, batchSize: number): RequestSink {
  const { path, model, allStates, timed } = context
  const versionIds: number[] = []
  const groupIds = new Map<string, number>()
  const ipIds = new Map<string, number>()
  let nodeId = 0
  // Started first: its thread loads (about a second with tsx) while the versions are written.
  // A run that fails removes its file: its commits need not wait for the disk.
  // Its users' and IPs' rollups are written apart, by this thread: the writer thread has more to do.
  const writer = timed(() => new BulkWriter(path, { durable: false, clientsApart: true }))
  try {
    timed(() => writeVersions())
  } catch (error) {
    try {
      writer.close()
    } catch {
      // the versions' error is the one to report
    }
    throw error
  }
  function writeVersions(): void {
    model.versions.forEach((version, index) => {
      const store = new MetricsStore(path, version, version.at)
      try {
        // The unmatched endpoint from the start (the inline path adds it at its first request).
        const discovered = context.discoveredAt(index)
        store.write(
          [],
          [],
          index === 0 ? [...discovered, context.unmatched] : discovered,
          // the time of the inline path's first write after the release
          Math.max(version.at, model.from),
        )
        versionIds.push(store.versionId)
        nodeId = store.nodeId
        if (index === 0) {
          const groups = [...new Set(model.users.map((u) => u.name))]
          const ips = [...new Set([...model.users.flatMap((u) => u.ips), ...model.scannerIps])]
          store.idsOf('user_group', groups).forEach((id, i) => groupIds.set(groups[i]!, id))
          store.idsOf('client_ip', ips).forEach((id, i) => ipIds.set(ips[i]!, id))
        }
      } finally {
        store.close()
      }
    })
  }
  const counter = new RollupCounter(0)
  let versionId = 0
  let lastId = 0
  let rows = new RollupColumns(batchSize)
  let aborted = new Uint8Array(batchSize)

  const hand = (clientsNow: boolean): void => {
    const touched: number[] = []
    for (const s of allStates) {
      if (s.pendingLastRequested > 0) touched.push(s.id!, s.pendingLastRequested)
      s.pendingLastRequested = 0
    }
    const batch = rows
    const abortedColumn = aborted
    timed(() => {
      const counted = counter.count(batch, clientsNow)
      writer.write({
        rows: batch,
        aborted: abortedColumn,
        counted,
        touched: Float64Array.from(touched),
      })
    })
    rows = new RollupColumns(batchSize)
    aborted = new Uint8Array(batchSize)
    context.progress(lastId)
  }

  return {
    deploy(index) {
      this.flush(model.versions[index]!.at)
      versionId = versionIds[index]!
    },
    push(endpoint, time, durationUs, status, group, ip, abortedRequest) {
      if (rows.count === aborted.length) {
        const grown = new Uint8Array(aborted.length * 2)
        grown.set(aborted)
        aborted = grown
      }
      aborted[rows.count] = abortedRequest
      rows.push(
        ++lastId,
        endpoint.id!,
        time,
        durationUs,
        status,
        versionId,
        nodeId,
        group === null ? null : groupIds.get(group)!,
        ipIds.get(ip)!,
      )
    },
    get batched() {
      return rows.count
    },
    flush(now) {
      if (rows.count === 0) return
      touchHealth(context, now)
      hand(false)
    },
    close() {
      try {
        // The users and IPs of the last requests too, and the endpoints' last request times.
        hand(true)
      } finally {
        timed(() => writer.close())
      }
    },
  }
}
