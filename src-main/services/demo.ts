/**
 * Mostly data: the demo service's endpoints, users and releases, and the month they make.
 *
 * The demo database: a month of a made-up shop API's traffic, written
 * through the collector's own writer (MetricsStore) so the file is exactly
 * what a running collector produces. Deterministic for a given seed and end
 * time; the test fixtures are made by the same generator.
 */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import type { MonitorLevel, VersionSource } from 'routemeter/schema'
import { UNMATCHED_ROUTE } from 'routemeter/schema'
// The writer's own subpath: for programs that make a metrics file without serving requests.
import { MetricsStore, type EndpointState, type PendingRequest } from 'routemeter/writer'
import { getNativeBinding, markAsDemo } from './database.js'
import { Random } from './generator/random.js'
import { MS_PER_DAY, MS_PER_HOUR } from './stats.js'

export interface DemoOptions {
  /** better_sqlite3.node for another ABI (Electron); default: the one set by setNativeBinding */
  nativeBinding?: string
  /** end of the generated month, ms since the epoch; default now */
  now?: number
  /** about how many requests to write; default 50 000 */
  requests?: number
  /** length of the period in days; default 30 */
  days?: number
  /** seed of the random generator; default 1 */
  seed?: number
}

export interface DemoSummary {
  path: string
  /** requests written */
  requests: number
  from: number
  to: number
}

interface DemoEndpoint {
  method: string
  route: string
  /** share of a user's traffic */
  weight: number
  medianMs: number
  /** spread of the log-normal duration */
  sigma: number
  level?: MonitorLevel
  /** the cost of this endpoint grows with the user's data (the slow one) */
  userCost?: boolean
  /** requests carry no user (before login) */
  anonymous?: boolean
  /** status codes other than 200/201 and their probabilities */
  errors?: ReadonlyArray<readonly [status: number, probability: number]>
  /** duration factor per version name */
  versionFactor?: Readonly<Record<string, number>>
  /** first version that has this endpoint */
  since?: string
}

const ENDPOINTS: readonly DemoEndpoint[] = [
  { method: 'GET', route: '/api/products', weight: 14, medianMs: 35, sigma: 0.4 },
  {
    method: 'GET',
    route: '/api/products/search',
    weight: 8,
    medianMs: 110,
    sigma: 0.6,
    errors: [[400, 0.01]],
    // 1.5.0 dropped an index; 1.5.1 brought part of the speed back.
    versionFactor: { '1.5.0': 1.9, '1.5.1': 1.3 },
  },
  {
    method: 'GET',
    route: '/api/products/:id',
    weight: 22,
    medianMs: 12,
    sigma: 0.35,
    errors: [[404, 0.03]],
  },
  {
    method: 'POST',
    route: '/api/products',
    weight: 2,
    medianMs: 55,
    sigma: 0.3,
    errors: [
      [400, 0.04],
      [422, 0.03],
      [409, 0.01],
    ],
  },
  {
    method: 'GET',
    route: '/api/products/:id/reviews',
    weight: 5,
    medianMs: 25,
    sigma: 0.45,
    since: '1.5.0',
  },
  {
    method: 'GET',
    route: '/api/users/:id/recommendations',
    weight: 6,
    medianMs: 140,
    sigma: 0.5,
    userCost: true,
    level: 2,
  },
  { method: 'GET', route: '/api/orders', weight: 7, medianMs: 45, sigma: 0.4 },
  {
    method: 'POST',
    route: '/api/orders',
    weight: 4,
    medianMs: 180,
    sigma: 0.45,
    // The payment provider fails now and then.
    errors: [
      [500, 0.015],
      [502, 0.01],
      [503, 0.005],
    ],
  },
  {
    method: 'GET',
    route: '/api/orders/:id',
    weight: 9,
    medianMs: 18,
    sigma: 0.35,
    errors: [[404, 0.02]],
  },
  {
    method: 'PATCH',
    route: '/api/orders/:id',
    weight: 2,
    medianMs: 65,
    sigma: 0.35,
    errors: [
      [409, 0.02],
      [400, 0.01],
    ],
  },
  {
    method: 'DELETE',
    route: '/api/orders/:id',
    weight: 0.6,
    medianMs: 28,
    sigma: 0.3,
    errors: [[404, 0.05]],
  },
  {
    method: 'POST',
    route: '/api/auth/login',
    weight: 3,
    medianMs: 95,
    sigma: 0.2,
    anonymous: true,
    errors: [
      [401, 0.09],
      [429, 0.005],
    ],
  },
  {
    method: 'GET',
    route: '/api/reports/export',
    weight: 0.4,
    medianMs: 2500,
    sigma: 0.7,
    level: 3,
    errors: [[504, 0.02]],
  },
]

/** Known to the collector, at level 0: only its last request time is kept. */
const HEALTH = { method: 'GET', route: '/health', level: 0 as MonitorLevel }

interface DemoUser {
  name: string
  /** share of the traffic */
  load: number
  /** how much slower the user-dependent endpoint is for this user */
  cost: number
  /** local time of the user's office, minutes east of UTC */
  utcOffsetMinutes: number
  ips: readonly string[]
}

const USERS: readonly DemoUser[] = [
  {
    name: 'acme-corp',
    load: 30,
    cost: 3,
    utcOffsetMinutes: 60,
    ips: ['203.0.113.10', '203.0.113.11'],
  },
  { name: 'globex', load: 18, cost: 1.2, utcOffsetMinutes: -300, ips: ['198.51.100.7'] },
  { name: 'initech', load: 12, cost: 0.8, utcOffsetMinutes: -300, ips: ['192.0.2.44'] },
  { name: 'umbrella', load: 9, cost: 6, utcOffsetMinutes: 60, ips: ['203.0.113.80'] },
  {
    name: 'hooli',
    load: 7,
    cost: 1,
    utcOffsetMinutes: -480,
    ips: ['198.51.100.23', '2001:db8::17'],
  },
  { name: 'stark-industries', load: 5, cost: 2, utcOffsetMinutes: -300, ips: ['192.0.2.150'] },
  { name: 'wayne-enterprises', load: 4, cost: 0.6, utcOffsetMinutes: -300, ips: ['203.0.113.200'] },
  { name: 'wonka', load: 2, cost: 0.9, utcOffsetMinutes: 0, ips: ['198.51.100.99'] },
  { name: 'tyrell', load: 1, cost: 1.5, utcOffsetMinutes: 540, ips: ['192.0.2.7'] },
  { name: 'cyberdyne', load: 0.5, cost: 0.7, utcOffsetMinutes: -480, ips: ['192.0.2.8'] },
]

/** Addresses that probe for unknown URLs (the unmatched endpoint's 404s). */
const SCANNER_IPS = ['45.155.205.3', '185.220.101.9', '2001:db8:bad::1']
const SCANNER_SHARE = 0.006

interface DemoVersion {
  name: string
  source: VersionSource
  /** start, as a fraction of the period */
  at: number
}

const VERSIONS: readonly DemoVersion[] = [
  { name: '1.4.0', source: 'package', at: 0 },
  { name: '1.5.0', source: 'package', at: 0.38 },
  { name: '1.5.1', source: 'package', at: 0.75 },
]

/** Relative traffic by local hour of day: a morning peak and an afternoon one. */
function dailyCycle(hour: number): number {
  return 0.08 + Math.exp(-((hour - 10.5) ** 2) / 6) + 0.8 * Math.exp(-((hour - 15) ** 2) / 5)
}

function endpointState(method: string, route: string, level: MonitorLevel): EndpointState {
  return { id: undefined, method, route, level, pendingLastRequested: 0 }
}

/** One request of a user to one of the endpoints the running version has. */
function userRequest(
  s: Random,
  user: DemoUser,
  time: number,
  version: string,
  available: ReadonlyArray<{ spec: DemoEndpoint; state: EndpointState }>,
  totalWeight: number,
): PendingRequest {
  const { spec: e, state: endpoint } = s.weighted(available, (x) => x.spec.weight, totalWeight)
  let status = e.method === 'POST' && !e.anonymous ? 201 : 200
  let r = s.next()
  for (const [code, probability] of e.errors ?? []) {
    if (r < probability) {
      status = code
      break
    }
    r -= probability
  }
  let ms = e.medianMs * Math.exp(e.sigma * s.normal())
  if (e.userCost) ms *= user.cost
  ms *= e.versionFactor?.[version] ?? 1
  if (s.next() < 0.005) ms *= 4 + 12 * s.next() // an outlier: a cold cache, a GC pause
  if (status >= 400 && status < 500) ms *= 0.3 // rejected early
  if (status >= 502) ms = Math.max(ms, 1000 + 29_000 * s.next()) // waited for a gateway
  const aborted = s.next() < 0.0015
  return {
    endpoint,
    time,
    durationUs: Math.max(50, Math.round(ms * 1000)),
    // A client that leaves before the response gets no status at all.
    status: aborted ? 0 : status,
    group: e.anonymous ? null : user.name,
    ip: user.ips[Math.floor(s.next() * user.ips.length)]!,
    aborted: aborted ? 1 : 0,
  }
}

/** A scanner probing a URL the app has no route for. */
function scanRequest(s: Random, endpoint: EndpointState, time: number): PendingRequest {
  return {
    endpoint,
    time,
    durationUs: Math.round(300 + 2000 * s.next()),
    status: 404,
    group: null,
    ip: SCANNER_IPS[Math.floor(s.next() * SCANNER_IPS.length)]!,
    aborted: 0,
  }
}

/**
 * Writes the demo database to `path`, which must not exist yet (a demo never
 * overwrites a file). Returns what was written.
 */
export function createDemoDatabase(path: string, options: DemoOptions = {}): DemoSummary {
  const absolute = resolve(path)
  if (existsSync(absolute)) {
    throw new Error(`createDemoDatabase: ${absolute} exists already; choose a new path`)
  }
  const nativeBinding = options.nativeBinding ?? getNativeBinding()
  const to = options.now ?? Date.now()
  const days = options.days ?? 30
  const target = options.requests ?? 50_000
  const from = to - days * MS_PER_DAY
  const sample = new Random(options.seed ?? 1)

  const endpoints = ENDPOINTS.map((spec) => ({
    spec,
    state: endpointState(spec.method, spec.route, spec.level ?? 1),
    since: spec.since === undefined ? 0 : VERSIONS.findIndex((v) => v.name === spec.since),
  }))
  const health = endpointState(HEALTH.method, HEALTH.route, HEALTH.level)
  const unmatched = endpointState('GET', UNMATCHED_ROUTE, 1)
  const versionStarts = VERSIONS.map((v) => from + Math.round(v.at * (to - from)))

  // Expected requests per user and hour, scaled so that the month adds up to `target`.
  const hours = Math.ceil((to - from) / MS_PER_HOUR)
  const shape = (user: DemoUser, hourStart: number): number => {
    const local = new Date(hourStart + user.utcOffsetMinutes * 60_000)
    const weekend = local.getUTCDay() === 0 || local.getUTCDay() === 6 ? 0.35 : 1
    const growth = 1 + (0.3 * (hourStart - from)) / (to - from)
    return user.load * dailyCycle(local.getUTCHours() + 0.5) * weekend * growth
  }
  let shapeTotal = 0
  for (let h = 0; h < hours; h++) {
    for (const user of USERS) shapeTotal += shape(user, from + h * MS_PER_HOUR)
  }
  const scale = (target * (1 - SCANNER_SHARE)) / shapeTotal

  let written = 0
  let versionIndex = 0
  let batch: PendingRequest[] = []
  let discovered = [...endpoints.filter((e) => e.since === 0).map((e) => e.state), health]
  let available = endpoints.filter((e) => e.since === 0)
  let totalWeight = available.reduce((sum, e) => sum + e.spec.weight, 0)
  const openStore = (index: number): MetricsStore => {
    const version = VERSIONS[index]!
    return new MetricsStore(absolute, version, versionStarts[index], nativeBinding)
  }
  let store = openStore(0)

  // Writes like the collector's timer does: requests, the endpoints they touched, new routes.
  const flush = (now: number): void => {
    const touched = new Set<EndpointState>()
    for (const r of batch) {
      touched.add(r.endpoint)
      if (r.time > r.endpoint.pendingLastRequested) r.endpoint.pendingLastRequested = r.time
    }
    store.write(batch, [...touched], discovered, now)
    written += batch.length
    batch = []
    discovered = []
  }

  // A release: the app restarts with the new version, and its new routes are discovered.
  const deploy = (index: number): void => {
    flush(versionStarts[index]!)
    store.close()
    store = openStore(index)
    versionIndex = index
    const released = endpoints.filter((e) => e.since === index)
    discovered = released.map((e) => e.state)
    available = endpoints.filter((e) => e.since <= index)
    totalWeight = available.reduce((sum, e) => sum + e.spec.weight, 0)
    flush(versionStarts[index]!)
  }

  try {
    flush(from)
    for (let h = 0; h < hours; h++) {
      const hourStart = from + h * MS_PER_HOUR
      const hourEnd = Math.min(hourStart + MS_PER_HOUR, to)
      const arrivals: Array<{ time: number; user: DemoUser | null }> = []
      for (const user of USERS) {
        const count = sample.poisson(shape(user, hourStart) * scale)
        for (let i = 0; i < count; i++) {
          arrivals.push({ time: hourStart + Math.floor(sample.next() * MS_PER_HOUR), user })
        }
      }
      const scans = sample.poisson((target * SCANNER_SHARE) / hours)
      for (let i = 0; i < scans; i++) {
        arrivals.push({ time: hourStart + Math.floor(sample.next() * MS_PER_HOUR), user: null })
      }
      arrivals.sort((a, b) => a.time - b.time)

      for (const { time, user } of arrivals) {
        if (time >= hourEnd) continue
        while (versionIndex + 1 < VERSIONS.length && time >= versionStarts[versionIndex + 1]!) {
          deploy(versionIndex + 1)
        }
        const version = VERSIONS[versionIndex]!.name
        batch.push(
          user === null
            ? scanRequest(sample, unmatched, time)
            : userRequest(sample, user, time, version, available, totalWeight),
        )
        if (batch.length >= 5000) flush(time)
      }
      // The monitoring system's health checks, once a minute: only the last one is kept.
      health.pendingLastRequested = hourEnd - 1
    }
    flush(to)
    // Level 0: no request rows, but the endpoint knows its last request.
    store.write([], [health], [], to)
  } finally {
    store.close()
  }
  markAsDemo(absolute)
  return { path: absolute, requests: written, from, to }
}
