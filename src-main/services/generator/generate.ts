/**
 * Writes a metrics file of realistic traffic through the collector's own
 * writer (MetricsStore), so the file is exactly what running collectors
 * produce: daily and weekly cycles, a few hot endpoints and a long tail,
 * users with very different loads, releases that make endpoints slower or
 * faster, 4xx and 5xx answers, incidents, and log-normal durations.
 *
 * Deterministic: the same options (seed and end included) give the same rows.
 */
import { existsSync, rmSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { UNMATCHED_ROUTE } from 'routemeter/schema'
import { type EndpointState } from 'routemeter/writer'
import {
  buildModel,
  type EndpointModel,
  type GeneratorOptions,
  type TrafficModel,
  MS_PER_HOUR,
  type UserModel,
  type VersionModel,
} from './model.js'
import { AliasTable, Random } from './random.js'
import { crossed, groupsOf, plan, refreshGroup } from './schedule.js'
import {
  bulkSink,
  codeTable,
  endpointState,
  inlineSink,
  pickCode,
  RequestSink,
  SinkContext,
} from './sinks.js'

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
  /** a model made elsewhere (a preset, such as the demo's) instead of one built from the options */
  model?: TrafficModel
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

  const model = options.model ?? buildModel(options)
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
