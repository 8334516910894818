/**
 * Writes a metrics file of realistic traffic through the collector's own
 * writer (MetricsStore), so the file is exactly what running collectors
 * produce: daily and weekly cycles, a few hot endpoints and a long tail,
 * users with very different loads, releases that make endpoints slower or
 * faster, 4xx and 5xx answers, incidents, and log-normal durations.
 *
 * Deterministic: the same options (seed and end included) give the same rows.
 */
import Database from 'better-sqlite3'
import { existsSync, rmSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { UNMATCHED_ROUTE, type MonitorLevel } from 'routemeter/schema'
import {
  BulkWriter,
  MetricsStore,
  RollupColumns,
  RollupCounter,
  type EndpointState,
  type PendingRequest,
} from 'routemeter/writer'
import {
  buildModel,
  MS_PER_HOUR,
  MS_PER_MINUTE,
  type EndpointModel,
  type GeneratorOptions,
  type TrafficModel,
  type UserModel,
  type VersionModel,
} from './model.js'
import { AliasTable, Random } from './random.js'

/** Changes whenever the same options would give other rows (for caches of generated files). */
export const GENERATOR_VERSION = 1

export interface GenerateOptions extends GeneratorOptions {
  /** replace an existing file (and its -wal, -shm); default false: refuse */
  overwrite?: boolean
  /** rows per write (one transaction each); default 20 000 */
  batchSize?: number
  /** better_sqlite3.node built for another ABI (Electron's main process); writes on this thread */
  nativeBinding?: string
  /**
   * true (default): the bulk writer inserts the rows from a thread of its
   * own while this one makes the next ones; false: MetricsStore.write on
   * this thread, as a collector does (the same rows and rollups, slower)
   */
  thread?: boolean
  /** called after every write with the rows written so far */
  onProgress?: (written: number, total: number) => void
}

export interface GenerateSummary {
  path: string
  /** request rows written */
  requests: number
  from: number
  to: number
  endpoints: number
  users: number
  versions: VersionModel[]
  /** wall time of the whole run */
  elapsedMs: number
  /**
   * time this thread spent in the collector's writer: opening the file,
   * counting rollups and writing (inline), or waiting for the writer thread
   */
  writeMs: number
  /** time spent making the rows (elapsedMs - writeMs) */
  generateMs: number
  /** file size after the writer closed it (WAL checkpointed) */
  fileBytes: number
}

/** A user group with the same office hours: users in one time zone, or integrations. */
interface Group {
  utcOffsetMinutes: number
  bot: boolean
  users: UserModel[]
  /** users active now, and a table to pick one by load */
  active: number[]
  table: AliasTable | undefined
}

/** Relative traffic by local hour for people at work: a morning and an afternoon peak. */
function officeHours(hour: number): number {
  return 0.06 + Math.exp(-((hour - 10.5) ** 2) / 6) + 0.8 * Math.exp(-((hour - 15) ** 2) / 5)
}

/** Days most offices are closed (local): Christmas to New Year, and 1 May. */
function isHoliday(month: number, day: number): boolean {
  return (month === 11 && day >= 24) || (month === 0 && day === 1) || (month === 4 && day === 1)
}

function groupsOf(model: TrafficModel): Group[] {
  const byKey = new Map<string, Group>()
  for (const user of model.users) {
    const key = user.bot ? 'bot' : String(user.utcOffsetMinutes)
    let group = byKey.get(key)
    if (group === undefined) {
      group = {
        utcOffsetMinutes: user.utcOffsetMinutes,
        bot: user.bot,
        users: [],
        active: [],
        table: undefined,
      }
      byKey.set(key, group)
    }
    group.users.push(user)
  }
  return [...byKey.values()]
}

/** Sum of the loads of the users active at `time`; refreshes the group's pick table. */
function refreshGroup(group: Group, time: number): number {
  group.active = []
  let load = 0
  group.users.forEach((user, i) => {
    if (user.activeFrom <= time && time < user.activeTo) {
      group.active.push(i)
      load += user.load
    }
  })
  group.table =
    group.active.length === 0
      ? undefined
      : new AliasTable(group.active.map((i) => group.users[i]!.load))
  return load
}

/** Relative traffic of a group in the hour starting at `hourStart`, before its user load. */
function groupShape(group: Group, hourStart: number, model: TrafficModel): number {
  const growth = 1 + (model.growth * (hourStart - model.from)) / (model.to - model.from)
  if (group.bot) return growth
  const local = new Date(hourStart + MS_PER_HOUR / 2 + group.utcOffsetMinutes * MS_PER_MINUTE)
  const weekday = local.getUTCDay()
  const closed =
    weekday === 0 || weekday === 6 || isHoliday(local.getUTCMonth(), local.getUTCDate())
  return officeHours(local.getUTCHours() + local.getUTCMinutes() / 60) * (closed ? 0.3 : 1) * growth
}

/**
 * The expected traffic of each group in each hour (with some noise), and the
 * number of requests per hour: cumulative rounding makes them add up to
 * exactly `model.requests`.
 */
function plan(
  model: TrafficModel,
  groups: Group[],
  random: Random,
): { hours: number; weights: Float64Array; counts: Uint32Array } {
  const hours = Math.ceil((model.to - model.from) / MS_PER_HOUR)
  const g = groups.length
  // One more column: the scanners probing for URLs the app does not have.
  const weights = new Float64Array(hours * (g + 1))
  let userTotal = 0
  const loads = new Float64Array(g)
  for (let h = 0; h < hours; h++) {
    const hourStart = model.from + h * MS_PER_HOUR
    const length = Math.min(MS_PER_HOUR, model.to - hourStart) / MS_PER_HOUR
    const mid = hourStart + MS_PER_HOUR / 2
    for (let j = 0; j < g; j++) {
      const group = groups[j]!
      // Users join and leave at hour boundaries; refresh only when someone did.
      if (h === 0 || group.users.some((u) => crossed(u, mid - MS_PER_HOUR, mid))) {
        loads[j] = refreshGroup(group, mid)
      }
      const w = loads[j]! * groupShape(group, hourStart, model) * length
      const noisy = w * Math.exp(0.12 * random.normal())
      weights[h * (g + 1) + j] = noisy
      userTotal += noisy
    }
  }
  const scanners = (userTotal * model.scannerShare) / (1 - model.scannerShare) / hours
  for (let h = 0; h < hours; h++) weights[h * (g + 1) + g] = scanners
  const total = userTotal + scanners * hours
  const counts = new Uint32Array(hours)
  let cumulative = 0
  let assigned = 0
  for (let h = 0; h < hours; h++) {
    for (let j = 0; j <= g; j++) cumulative += weights[h * (g + 1) + j]!
    const upTo = total > 0 ? Math.round((cumulative / total) * model.requests) : 0
    counts[h] = upTo - assigned
    assigned = upTo
  }
  return { hours, weights, counts }
}

/** Whether the user joined or left in (after, until]. */
function crossed(user: UserModel, after: number, until: number): boolean {
  return (
    (user.activeFrom > after && user.activeFrom <= until) ||
    (user.activeTo > after && user.activeTo <= until)
  )
}

function endpointState(method: string, route: string, level: MonitorLevel): EndpointState {
  return { id: undefined, method, route, level, pendingLastRequested: 0 }
}

/** Status codes of an endpoint as cumulative probabilities, for a pick with one draw. */
interface CodeTable {
  codes: Int32Array
  cumulative: Float64Array
}

function codeTable(codes: ReadonlyArray<readonly [number, number]>): CodeTable {
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

function pickCode(table: CodeTable, r: number): number {
  let i = 0
  while (r >= table.cumulative[i]! && i < table.codes.length - 1) i++
  return table.codes[i]!
}

/** What the generator hands its requests to: the writer on this thread, or the bulk writer. */
interface RequestSink {
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
interface SinkContext {
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
function touchHealth(context: SinkContext, now: number): void {
  context.health.pendingLastRequested = Math.floor(now / MS_PER_MINUTE) * MS_PER_MINUTE
}

/**
 * The collector's own path, on this thread: MetricsStore.write with its
 * rollups, one store per version as a restarted app opens the file.
 */
function inlineSink(context: SinkContext): RequestSink {
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
function bulkSink(context: SinkContext, batchSize: number): RequestSink {
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

/**
 * Generates the traffic and writes it to `path` through the collector's
 * writer: the bulk writer (a thread of its own) unless `thread` is false or
 * a nativeBinding is given, else MetricsStore on this thread.
 */
export function generateMetricsFile(path: string, options: GenerateOptions = {}): GenerateSummary {
  const started = performance.now()
  const absolute = resolve(path)
  if (existsSync(absolute)) {
    if (options.overwrite !== true) {
      throw new Error(`${absolute} exists already; choose another path or overwrite it`)
    }
    for (const suffix of ['', '-wal', '-shm']) rmSync(absolute + suffix, { force: true })
  }
  const batchSize = options.batchSize ?? 20_000
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be >= 1')

  const model = buildModel(options)
  // Its own stream, so that the model does not change when the traffic code does.
  const random = new Random((options.seed ?? 1) ^ 0x5eed)
  const groups = groupsOf(model)
  const { hours, weights, counts } = plan(model, groups, random)
  const endpoints = model.endpoints
  const e = endpoints.length
  const states = endpoints.map((m) => endpointState(m.method, m.route, m.level))
  const unmatched = endpointState('GET', UNMATCHED_ROUTE, 1)
  // Known to the collector at level 0: only its last request time is kept.
  const health = endpointState('GET', '/health', 0)
  const allStates = [...states, unmatched, health]
  const codes4xx = endpoints.map((m) => codeTable(m.codes4xx))
  const codes5xx = endpoints.map((m) => codeTable(m.codes5xx))

  let writeMs = 0
  let written = 0
  let versionIndex = 0
  let available: number[] = []
  let endpointTable: AliasTable | undefined
  const context: SinkContext = {
    path: absolute,
    model,
    allStates,
    health,
    unmatched,
    discoveredAt: (index) => [
      ...states.filter((_, i) => endpoints[i]!.since === index),
      ...(index === 0 ? [health] : []),
    ],
    nativeBinding: options.nativeBinding,
    timed(work) {
      const t0 = performance.now()
      try {
        return work()
      } finally {
        writeMs += performance.now() - t0
      }
    },
    progress(count) {
      written = count
      options.onProgress?.(written, model.requests)
    },
  }
  const threaded = (options.thread ?? true) && options.nativeBinding === undefined
  let sink: RequestSink | undefined

  // The app restarts with a new version: the routes it added are discovered.
  const deploy = (index: number): void => {
    versionIndex = index
    sink!.deploy(index)
    available = []
    for (let i = 0; i < e; i++) {
      const m = endpoints[i]!
      if (m.since <= index && index < m.until) available.push(i)
    }
    endpointTable =
      available.length > 0 ? new AliasTable(available.map((i) => endpoints[i]!.weight)) : undefined
  }

  const request = (
    m: EndpointModel,
    index: number,
    state: EndpointState,
    user: UserModel,
    time: number,
    versionCell: number,
    incident: boolean,
  ): void => {
    state.pendingLastRequested = time
    let ms = m.medianMs * model.durationFactor[versionCell]! * Math.exp(m.sigma * random.normal())
    if (m.userCost) ms *= user.cost
    const p5xx = m.p5xx * model.errorFactor[versionCell]! + (incident ? 0.3 : 0)
    const r = random.next()
    let status = m.okStatus
    if (r < p5xx) {
      status = pickCode(codes5xx[index]!, random.next())
      if (status === 504) ms = 30_000 + 200 * random.next()
      else if (status === 502 || status === 503) ms *= 0.4
    } else if (r < p5xx + m.p4xx) {
      status = pickCode(codes4xx[index]!, random.next())
      ms *= 0.35 // rejected before the work
    }
    if (incident) ms *= 3
    // Outliers: a cold cache, a GC pause, a slow disk.
    if (random.next() < 0.004) ms *= 3 + 10 * random.next()
    let aborted: 0 | 1 = 0
    if (random.next() < 0.001) {
      aborted = 1
      status = 0 // the client left before any header was sent
      ms *= 2
    }
    sink!.push(
      state,
      time,
      Math.max(80, Math.round(ms * 1000)),
      status,
      m.anonymous ? null : user.name,
      user.ips.length === 1 ? user.ips[0]! : user.ips[random.int(user.ips.length)]!,
      aborted,
    )
  }

  const g = groups.length
  const groupCumulative = new Float64Array(g + 1)
  let times = new Float64Array(1024)
  try {
    sink = threaded ? bulkSink(context, batchSize) : inlineSink(context)
    deploy(0)
    for (let h = 0; h < hours; h++) {
      const n = counts[h]!
      const hourStart = model.from + h * MS_PER_HOUR
      const mid = hourStart + MS_PER_HOUR / 2
      // Users join and leave at hour boundaries, as in plan().
      for (const group of groups) {
        if (h === 0 || group.users.some((u) => crossed(u, mid - MS_PER_HOUR, mid))) {
          refreshGroup(group, mid)
        }
      }
      if (n === 0) continue
      const length = Math.min(MS_PER_HOUR, model.to - hourStart)
      let sum = 0
      for (let j = 0; j <= g; j++) {
        sum += weights[h * (g + 1) + j]!
        groupCumulative[j] = sum
      }
      if (times.length < n) times = new Float64Array(Math.max(n, times.length * 2))
      const hourTimes = times.subarray(0, n)
      for (let i = 0; i < n; i++) hourTimes[i] = hourStart + Math.floor(random.next() * length)
      hourTimes.sort()
      const incidents = model.incidents.filter(
        (x) => x.from < hourStart + MS_PER_HOUR && x.to > hourStart,
      )

      for (let i = 0; i < n; i++) {
        const time = hourTimes[i]!
        while (
          versionIndex + 1 < model.versions.length &&
          time >= model.versions[versionIndex + 1]!.at
        ) {
          deploy(versionIndex + 1)
        }
        const r = random.next() * sum
        let j = 0
        while (j < g && r >= groupCumulative[j]!) j++
        const group = groups[j]
        if (group === undefined || group.table === undefined || endpointTable === undefined) {
          // A scanner probing a URL the app does not have.
          unmatched.pendingLastRequested = time
          sink.push(
            unmatched,
            time,
            Math.round(250 + 1500 * random.next()),
            404,
            null,
            model.scannerIps[random.int(model.scannerIps.length)]!,
            0,
          )
        } else {
          const user = group.users[group.active[group.table.pick(random)]!]!
          let index = available[endpointTable.pick(random)]!
          const favorite = user.favorite
          if (favorite >= 0 && random.next() < (user.bot ? 0.6 : 0.3)) {
            const m = endpoints[favorite]!
            if (m.since <= versionIndex && versionIndex < m.until) index = favorite
          }
          request(
            endpoints[index]!,
            index,
            states[index]!,
            user,
            time,
            versionIndex * e + index,
            incidents.length > 0 &&
              incidents.some((x) => x.endpoint === index && x.from <= time && time < x.to),
          )
        }
        if (sink.batched >= batchSize) sink.flush(time)
      }
    }
    sink.flush(model.to)
    sink.close()
  } catch (error) {
    try {
      sink?.close()
    } catch {
      // the first error is the one to report
    }
    // Half a file would open as a smaller, valid one: nothing is left instead.
    for (const suffix of ['', '-wal', '-shm']) rmSync(absolute + suffix, { force: true })
    throw error
  }

  const elapsedMs = performance.now() - started
  return {
    path: absolute,
    requests: written,
    from: model.from,
    to: model.to,
    endpoints: endpoints.length,
    users: model.users.length,
    versions: model.versions,
    elapsedMs,
    writeMs,
    generateMs: elapsedMs - writeMs,
    fileBytes: statSync(absolute).size,
  }
}
