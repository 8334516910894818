/**
 * The demo database: a month of a made-up shop API's traffic, a preset of
 * the traffic generator (generator/): this file says what the shop is, the
 * generator makes its traffic and writes it through the collector's own
 * writer (MetricsStore), so the file is exactly what a running collector
 * produces. Deterministic for a given seed and end time; the test fixtures
 * are made the same way.
 */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import type { MonitorLevel, VersionSource } from 'routemeter/schema'
import { getNativeBinding, markAsDemo } from './database.js'
import { generateMetricsFile } from './generator/generate.js'
import type { EndpointModel, TrafficModel, UserModel, VersionModel } from './generator/model.js'
import { MS_PER_DAY } from './stats.js'

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

/** The demo shop as the generator's model: its endpoints, users and releases over [from, to). */
export function demoModel(from: number, to: number, requests: number): TrafficModel {
  const versionIndex = (name: string | undefined): number =>
    name === undefined ? 0 : VERSIONS.findIndex((v) => v.name === name)
  const endpoints: EndpointModel[] = ENDPOINTS.map((spec) => {
    const errors = spec.errors ?? []
    const codes4xx = errors.filter(([status]) => status < 500)
    const codes5xx = errors.filter(([status]) => status >= 500)
    return {
      method: spec.method,
      route: spec.route,
      kind: 'detail',
      level: spec.level ?? 1,
      weight: spec.weight,
      medianMs: spec.medianMs,
      sigma: spec.sigma,
      userCost: spec.userCost ?? false,
      anonymous: spec.anonymous ?? false,
      p4xx: codes4xx.reduce((sum, [, p]) => sum + p, 0),
      p5xx: codes5xx.reduce((sum, [, p]) => sum + p, 0),
      codes4xx,
      codes5xx,
      okStatus: spec.method === 'POST' && spec.anonymous !== true ? 201 : 200,
      since: versionIndex(spec.since),
      until: Number.POSITIVE_INFINITY,
    }
  })
  const users: UserModel[] = USERS.map((user) => ({
    ...user,
    bot: false,
    favorite: -1,
    activeFrom: from,
    activeTo: to,
  }))
  const versions: VersionModel[] = VERSIONS.map((version) => ({
    name: version.name,
    source: version.source,
    at: from + Math.round(version.at * (to - from)),
    effects: [],
  }))
  const durationFactor = new Float64Array(versions.length * endpoints.length)
  VERSIONS.forEach((version, v) => {
    ENDPOINTS.forEach((spec, e) => {
      durationFactor[v * endpoints.length + e] = spec.versionFactor?.[version.name] ?? 1
    })
  })
  return {
    from,
    to,
    requests,
    endpoints,
    users,
    versions,
    durationFactor,
    errorFactor: new Float64Array(versions.length * endpoints.length).fill(1),
    incidents: [],
    scannerIps: SCANNER_IPS,
    scannerShare: SCANNER_SHARE,
    growth: 0.3,
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
  const from = to - (options.days ?? 30) * MS_PER_DAY
  const summary = generateMetricsFile(absolute, {
    model: demoModel(from, to, options.requests ?? 50_000),
    seed: options.seed ?? 1,
    // As a collector writes: MetricsStore on this thread.
    thread: false,
    ...(nativeBinding === undefined ? {} : { nativeBinding }),
  })
  markAsDemo(absolute)
  return { path: absolute, requests: summary.requests, from, to }
}
