/**
 * Mostly data: the catalogue of endpoints, users, releases and incidents of the made-up service.
 *
 * The made-up service whose traffic the generator writes: its endpoints,
 * its users (customers and integrations), its releases and incidents. All of
 * it follows from the options and the seed.
 */
import type { MonitorLevel, VersionSource } from 'routemeter/schema'
import { Random } from './random.js'

export const MS_PER_MINUTE = 60_000
export const MS_PER_HOUR = 3_600_000
export const MS_PER_DAY = 86_400_000

export interface GeneratorOptions {
  /** request rows to write (endpoints at level 1 and above); default 1 000 000 */
  requests?: number
  /** length of the period in days, ending at `end`; default 30 */
  days?: number
  /** end of the period, ms since the epoch; default the start of the current UTC hour */
  end?: number
  /** number of endpoints (the unmatched one and a level-0 health check come on top); default 30 */
  endpoints?: number
  /** number of users (customers and integrations); default 100 */
  users?: number
  /** number of versions; default one release every 4 days or so, at least 2 */
  versions?: number
  /** share of requests answered 4xx or 5xx; default 0.03 */
  errorRate?: number
  /** seed of the random generator; default 1 */
  seed?: number
}

export type EndpointKind =
  | 'list'
  | 'detail'
  | 'search'
  | 'create'
  | 'update'
  | 'remove'
  | 'child'
  | 'childCreate'
  | 'login'
  | 'export'
  | 'recommendations'

export interface EndpointModel {
  method: string
  route: string
  kind: EndpointKind
  level: MonitorLevel
  /** relative share of the traffic */
  weight: number
  /** median duration in ms, before version and user factors */
  medianMs: number
  /** spread of the log-normal duration */
  sigma: number
  /** the duration is multiplied by the user's cost (the work depends on the user's data) */
  userCost: boolean
  /** requests carry no user (before login) */
  anonymous: boolean
  /** probability of a 4xx and of a 5xx answer */
  p4xx: number
  p5xx: number
  /** 4xx and 5xx status codes with their relative weights */
  codes4xx: ReadonlyArray<readonly [status: number, weight: number]>
  codes5xx: ReadonlyArray<readonly [status: number, weight: number]>
  /** status of a success */
  okStatus: number
  /** index of the first version that has it */
  since: number
  /** index of the first version that no longer has it; Infinity if none */
  until: number
}

export interface UserModel {
  name: string
  /** relative share of the traffic */
  load: number
  /** factor on the duration of endpoints whose work depends on the user */
  cost: number
  /** local time offset, minutes east of UTC */
  utcOffsetMinutes: number
  /** an integration polls around the clock; a person works office hours */
  bot: boolean
  ips: readonly string[]
  /** index of an endpoint this user calls far more than others do, or -1 */
  favorite: number
  /** when the user's traffic starts and stops, ms since the epoch */
  activeFrom: number
  activeTo: number
}

/** What a release changed, for the summary (so that a reader can find it in the views). */
export interface ReleaseEffect {
  endpoint: string
  /** duration factor relative to the previous version (1.8 = 80 % slower); 1 when only errors changed */
  factor: number
  /** why */
  note: string
}

export interface VersionModel {
  name: string
  source: VersionSource
  /** when the release was deployed, ms since the epoch */
  at: number
  effects: ReleaseEffect[]
}

export interface IncidentModel {
  endpoint: number
  from: number
  to: number
}

export interface TrafficModel {
  from: number
  to: number
  requests: number
  endpoints: EndpointModel[]
  users: UserModel[]
  versions: VersionModel[]
  /** duration factor of endpoint e in version v: durationFactor[v * endpoints.length + e] */
  durationFactor: Float64Array
  /** factor on the 5xx probability of endpoint e in version v (a release with a bug) */
  errorFactor: Float64Array
  incidents: IncidentModel[]
  /** addresses that probe for URLs the app does not have (the unmatched endpoint) */
  scannerIps: readonly string[]
  /** share of the requests that come from scanners */
  scannerShare: number
  /** traffic growth over the period (0.4 = 40 % more at the end than at the start) */
  growth: number
}

interface Resource {
  name: string
  child: string
}

const RESOURCES: readonly Resource[] = [
  { name: 'orders', child: 'items' },
  { name: 'users', child: 'orders' },
  { name: 'invoices', child: 'lines' },
  { name: 'carts', child: 'items' },
  { name: 'payments', child: 'refunds' },
  { name: 'shipments', child: 'events' },
  { name: 'projects', child: 'tasks' },
  { name: 'teams', child: 'members' },
  { name: 'files', child: 'versions' },
  { name: 'subscriptions', child: 'invoices' },
  { name: 'webhooks', child: 'deliveries' },
  { name: 'categories', child: 'products' },
  { name: 'notifications', child: 'receipts' },
  { name: 'coupons', child: 'redemptions' },
  { name: 'addresses', child: 'checks' },
  { name: 'messages', child: 'attachments' },
  { name: 'tags', child: 'items' },
  { name: 'reports', child: 'runs' },
]

interface Template {
  method: string
  route: string
  kind: EndpointKind
}

/** Every endpoint the catalogue can offer, the showcase ones first. */
function catalogue(random: Random): Template[] {
  const showcase: Template[] = [
    { method: 'GET', route: '/api/products', kind: 'list' },
    { method: 'GET', route: '/api/products/:id', kind: 'detail' },
    { method: 'GET', route: '/api/products/search', kind: 'search' },
    { method: 'POST', route: '/api/orders', kind: 'create' },
    { method: 'POST', route: '/api/auth/login', kind: 'login' },
    { method: 'GET', route: '/api/users/:id/recommendations', kind: 'recommendations' },
    { method: 'GET', route: '/api/orders/:id', kind: 'detail' },
    { method: 'GET', route: '/api/reports/export', kind: 'export' },
  ]
  const rest: Template[] = []
  for (const { name, child } of RESOURCES) {
    const base = `/api/${name}`
    rest.push(
      { method: 'GET', route: base, kind: 'list' },
      { method: 'GET', route: `${base}/:id`, kind: 'detail' },
      { method: 'POST', route: base, kind: 'create' },
      { method: 'PATCH', route: `${base}/:id`, kind: 'update' },
      { method: 'DELETE', route: `${base}/:id`, kind: 'remove' },
      { method: 'GET', route: `${base}/search`, kind: 'search' },
      { method: 'GET', route: `${base}/:id/${child}`, kind: 'child' },
      { method: 'POST', route: `${base}/:id/${child}`, kind: 'childCreate' },
      { method: 'GET', route: `${base}/:id/${child}/:${singular(child)}Id`, kind: 'detail' },
    )
  }
  const seen = new Set(showcase.map((t) => `${t.method} ${t.route}`))
  return [...showcase, ...random.shuffle(rest).filter((t) => !seen.has(`${t.method} ${t.route}`))]
}

function singular(word: string): string {
  return word.endsWith('ies') ? `${word.slice(0, -3)}y` : word.replace(/s$/, '')
}

/** The most endpoints the catalogue has. */
export const MAX_ENDPOINTS = 8 + RESOURCES.length * 9 - 1

interface KindProfile {
  medianMs: readonly [number, number]
  sigma: readonly [number, number]
  /** how error-prone, relative to the others */
  errorPropensity: number
  /** share of the errors that are 5xx */
  share5xx: number
  codes4xx: ReadonlyArray<readonly [number, number]>
  codes5xx: ReadonlyArray<readonly [number, number]>
}

const SERVER_ERRORS: ReadonlyArray<readonly [number, number]> = [
  [500, 8],
  [503, 2],
]

const KINDS: Record<EndpointKind, KindProfile> = {
  list: {
    medianMs: [12, 60],
    sigma: [0.3, 0.5],
    errorPropensity: 0.5,
    share5xx: 0.3,
    codes4xx: [
      [400, 3],
      [401, 1],
    ],
    codes5xx: SERVER_ERRORS,
  },
  detail: {
    medianMs: [3, 25],
    sigma: [0.25, 0.45],
    errorPropensity: 1.4,
    share5xx: 0.08,
    codes4xx: [
      [404, 6],
      [403, 1],
    ],
    codes5xx: SERVER_ERRORS,
  },
  search: {
    medianMs: [40, 220],
    sigma: [0.5, 0.8],
    errorPropensity: 0.8,
    share5xx: 0.25,
    codes4xx: [[400, 1]],
    codes5xx: [
      [500, 3],
      [504, 2],
    ],
  },
  create: {
    medianMs: [25, 140],
    sigma: [0.3, 0.5],
    errorPropensity: 2,
    share5xx: 0.3,
    codes4xx: [
      [400, 3],
      [422, 4],
      [409, 1],
    ],
    // The payment provider or a queue behind it fails now and then.
    codes5xx: [
      [500, 4],
      [502, 3],
      [503, 2],
    ],
  },
  update: {
    medianMs: [15, 80],
    sigma: [0.3, 0.45],
    errorPropensity: 1.2,
    share5xx: 0.12,
    codes4xx: [
      [400, 2],
      [404, 2],
      [409, 2],
    ],
    codes5xx: SERVER_ERRORS,
  },
  remove: {
    medianMs: [5, 40],
    sigma: [0.3, 0.4],
    errorPropensity: 1.2,
    share5xx: 0.1,
    codes4xx: [
      [404, 4],
      [403, 1],
    ],
    codes5xx: SERVER_ERRORS,
  },
  child: {
    medianMs: [8, 60],
    sigma: [0.3, 0.55],
    errorPropensity: 0.9,
    share5xx: 0.15,
    codes4xx: [[404, 1]],
    codes5xx: SERVER_ERRORS,
  },
  childCreate: {
    medianMs: [20, 100],
    sigma: [0.3, 0.45],
    errorPropensity: 1.6,
    share5xx: 0.2,
    codes4xx: [
      [400, 2],
      [422, 2],
    ],
    codes5xx: SERVER_ERRORS,
  },
  login: {
    medianMs: [70, 110],
    sigma: [0.15, 0.25],
    errorPropensity: 4,
    share5xx: 0.03,
    codes4xx: [
      [401, 12],
      [429, 1],
    ],
    codes5xx: SERVER_ERRORS,
  },
  export: {
    medianMs: [1500, 4000],
    sigma: [0.6, 0.9],
    errorPropensity: 3,
    share5xx: 0.6,
    codes4xx: [[400, 1]],
    codes5xx: [
      [504, 3],
      [500, 1],
    ],
  },
  recommendations: {
    medianMs: [60, 140],
    sigma: [0.35, 0.5],
    errorPropensity: 0.6,
    share5xx: 0.4,
    codes4xx: [[404, 1]],
    codes5xx: SERVER_ERRORS,
  },
}

/** Relative traffic of the showcase endpoints, on top of their rank. */
const KIND_WEIGHT: Partial<Record<EndpointKind, number>> = {
  login: 0.35,
  export: 0.03,
  recommendations: 0.5,
  remove: 0.3,
  update: 0.6,
}

const KNOWN_USERS = [
  'acme-corp',
  'globex',
  'initech',
  'umbrella',
  'hooli',
  'stark-industries',
  'wayne-enterprises',
  'wonka',
  'tyrell',
  'cyberdyne',
  'soylent',
  'massive-dynamic',
  'aperture',
  'black-mesa',
  'vandelay',
  'pied-piper',
]
const ADJECTIVES = ['blue', 'north', 'silver', 'bright', 'quiet', 'rapid', 'green', 'iron', 'lucky']
const NOUNS = ['harbor', 'pixel', 'forge', 'labs', 'works', 'river', 'peak', 'cloud', 'field']

function userNames(count: number, random: Random): string[] {
  const generated: string[] = []
  for (const a of ADJECTIVES) for (const n of NOUNS) generated.push(`${a}-${n}`)
  random.shuffle(generated)
  const names = [...KNOWN_USERS, ...generated]
  for (let i = 0; names.length < count; i++) names.push(`${generated[i % generated.length]}-${i}`)
  return names.slice(0, count)
}

/** Where a user's office is: minutes east of UTC, and how many users are there. */
const TIME_ZONES: ReadonlyArray<readonly [offset: number, weight: number]> = [
  [-480, 1],
  [-300, 3],
  [0, 2],
  [60, 5],
  [330, 0.5],
  [540, 0.5],
]

/** Documentation addresses (RFC 5737, RFC 3849): realistic, and nobody's. */
function documentationIp(index: number): string {
  const v4 = ['192.0.2', '198.51.100', '203.0.113']
  if (index < 3 * 254) return `${v4[Math.floor(index / 254)]!}.${(index % 254) + 1}`
  return `2001:db8:${(index >> 16).toString(16)}:${(index & 0xffff).toString(16)}::1`
}

/** Turns the options into the full model of the service. */
export function buildModel(options: GeneratorOptions = {}): TrafficModel {
  const requests = Math.round(options.requests ?? 1_000_000)
  const days = options.days ?? 30
  const to = options.end ?? Math.floor(Date.now() / MS_PER_HOUR) * MS_PER_HOUR
  const endpointCount = options.endpoints ?? 30
  const userCount = options.users ?? 100
  const versionCount = options.versions ?? Math.max(2, Math.round(days / 4))
  const errorRate = options.errorRate ?? 0.03
  const seed = options.seed ?? 1
  if (!Number.isInteger(requests) || requests < 0) throw new RangeError('requests must be >= 0')
  if (!(days > 0)) throw new RangeError('days must be > 0')
  if (!Number.isInteger(endpointCount) || endpointCount < 1 || endpointCount > MAX_ENDPOINTS) {
    throw new RangeError(`endpoints must be between 1 and ${MAX_ENDPOINTS}`)
  }
  if (!Number.isInteger(userCount) || userCount < 1) throw new RangeError('users must be >= 1')
  if (!Number.isInteger(versionCount) || versionCount < 1) {
    throw new RangeError('versions must be >= 1')
  }
  if (!(errorRate >= 0 && errorRate <= 0.5)) throw new RangeError('errorRate must be in [0, 0.5]')
  if (!Number.isFinite(to)) throw new RangeError('end must be a time')

  const random = new Random(seed)
  const from = to - Math.round(days * MS_PER_DAY)
  const versions = buildVersions(versionCount, from, to, random)
  const endpoints = buildEndpoints(endpointCount, versionCount, errorRate, random)
  const users = buildUsers(userCount, endpoints, from, to, random)
  const { durationFactor, errorFactor } = buildReleaseEffects(endpoints, versions, random)
  const incidents: IncidentModel[] = []
  const hot = endpoints
    .map((e, i) => ({ e, i }))
    .filter(({ e }) => e.level > 0)
    .sort((a, b) => b.e.weight - a.e.weight)
    .slice(0, 6)
  for (let i = 0; i < Math.max(1, Math.round(days / 15)); i++) {
    const start = from + random.next() * (to - from)
    incidents.push({
      endpoint: random.pick(hot).i,
      from: Math.round(start),
      to: Math.round(start + random.between(20, 180) * MS_PER_MINUTE),
    })
  }
  return {
    from,
    to,
    requests,
    endpoints,
    users,
    versions,
    durationFactor,
    errorFactor,
    incidents,
    scannerIps: ['45.155.205.3', '185.220.101.9', '2001:db8:bad::1', '2001:db8:bad::2'],
    scannerShare: 0.004,
    growth: 0.1 + 0.4 * Math.min(1, days / 365),
  }
}

function buildVersions(count: number, from: number, to: number, random: Random): VersionModel[] {
  const versions: VersionModel[] = []
  let [major, minor, patch] = [1, 0, 0]
  // The first version was deployed some days before the period starts.
  versions.push({
    name: '1.0.0',
    source: 'package',
    at: from - Math.round(random.between(1, 5) * MS_PER_DAY),
    effects: [],
  })
  const spacing = (to - from) / count
  for (let k = 1; k < count; k++) {
    let at = from + (k + random.between(-0.35, 0.35)) * spacing
    // Releases go out on a weekday, during working hours in UTC.
    const day = Math.floor(at / MS_PER_DAY) * MS_PER_DAY
    const weekday = new Date(day).getUTCDay()
    const shift = weekday === 6 ? 2 : weekday === 0 ? 1 : 0
    const snapped = day + shift * MS_PER_DAY + random.between(9, 17) * MS_PER_HOUR
    if (snapped > versions[k - 1]!.at && snapped < to) at = snapped
    if (at <= versions[k - 1]!.at) at = versions[k - 1]!.at + 1
    const bump = random.next()
    if (bump < 0.04) [major, minor, patch] = [major + 1, 0, 0]
    else if (bump < 0.3) [minor, patch] = [minor + 1, 0]
    else patch++
    versions.push({
      name: `${major}.${minor}.${patch}`,
      source: 'package',
      at: Math.round(at),
      effects: [],
    })
  }
  return versions
}

function buildEndpoints(
  count: number,
  versionCount: number,
  errorRate: number,
  random: Random,
): EndpointModel[] {
  const templates = catalogue(random).slice(0, count)
  const endpoints = templates.map((t, rank): EndpointModel => {
    const profile = KINDS[t.kind]
    // A few hot endpoints and a long tail (Zipf), with some noise.
    const weight = (KIND_WEIGHT[t.kind] ?? 1) * (rank + 1) ** -1.1 * random.logBetween(0.6, 1.6)
    // The long tail: some endpoints arrive with a later release, one goes away.
    const late = rank >= 8 && versionCount > 2 && random.next() < 0.25
    return {
      method: t.method,
      route: t.route,
      kind: t.kind,
      level: t.kind === 'export' ? 3 : t.kind === 'recommendations' ? 2 : 1,
      weight,
      medianMs: random.logBetween(profile.medianMs[0], profile.medianMs[1]),
      sigma: random.between(profile.sigma[0], profile.sigma[1]),
      userCost: t.kind === 'recommendations' || t.kind === 'export' || t.kind === 'search',
      anonymous: t.kind === 'login',
      p4xx: 0,
      p5xx: 0,
      codes4xx: profile.codes4xx,
      codes5xx: profile.codes5xx,
      okStatus: t.method === 'POST' && t.kind !== 'login' ? 201 : t.method === 'DELETE' ? 204 : 200,
      since: late ? 1 + random.int(versionCount - 1) : 0,
      until: Number.POSITIVE_INFINITY,
    }
  })
  if (endpoints.length > 12 && versionCount > 3) {
    // One endpoint of the tail is deprecated and removed by a late release.
    const candidate = endpoints[endpoints.length - 1]!
    if (candidate.since === 0) {
      candidate.until = Math.max(1, versionCount - 1 - random.int(Math.ceil(versionCount / 3)))
    }
  }
  // Scale each endpoint's error propensity so that the traffic as a whole has `errorRate`.
  let weighted = 0
  let total = 0
  for (const e of endpoints) {
    weighted += e.weight * KINDS[e.kind].errorPropensity
    total += e.weight
  }
  for (const e of endpoints) {
    const profile = KINDS[e.kind]
    const p = Math.min(0.6, (errorRate * profile.errorPropensity * total) / weighted)
    e.p4xx = p * (1 - profile.share5xx)
    e.p5xx = p * profile.share5xx
  }
  return endpoints
}

function buildUsers(
  count: number,
  endpoints: readonly EndpointModel[],
  from: number,
  to: number,
  random: Random,
): UserModel[] {
  const names = userNames(count, random)
  const zoneWeight = TIME_ZONES.reduce((sum, [, w]) => sum + w, 0)
  const favourites = endpoints
    .map((e, i) => ({ e, i }))
    .filter(({ e }) => e.kind === 'list' || e.kind === 'detail' || e.kind === 'search')
    .map(({ i }) => i)
  // Very different loads: a Pareto tail, where the biggest customer makes hundreds of times
  // the traffic of the smallest. The best-known names are the biggest customers.
  const loads = names.map(() => Math.min(300, random.pareto(1.1))).sort((a, b) => b - a)
  let ipIndex = 0
  return names.map((name, rank): UserModel => {
    let r = random.next() * zoneWeight
    let utcOffsetMinutes = 0
    for (const [offset, w] of TIME_ZONES) {
      r -= w
      if (r < 0) {
        utcOffsetMinutes = offset
        break
      }
    }
    // Integrations poll around the clock; the biggest customers are people at work.
    const bot = rank >= 3 && random.next() < 0.12
    const load = loads[rank]! * (bot ? 0.5 : 1)
    const ips: string[] = []
    const ipCount = 1 + random.int(load > 20 ? 4 : 2)
    for (let i = 0; i < ipCount; i++) ips.push(documentationIp(ipIndex++))
    const joins = random.next()
    const activeFrom = joins < 0.15 ? from + random.next() * (to - from) * 0.9 : from - 1
    const activeTo = joins > 0.92 ? activeFrom + random.between(0.2, 1) * (to - activeFrom) : to + 1
    return {
      name,
      load,
      cost: Math.exp(0.7 * random.normal()),
      utcOffsetMinutes,
      bot,
      ips,
      favorite:
        favourites.length > 0 && (bot || random.next() < 0.1) ? random.pick(favourites) : -1,
      activeFrom: Math.round(activeFrom),
      activeTo: Math.round(activeTo),
    }
  })
}

function buildReleaseEffects(
  endpoints: readonly EndpointModel[],
  versions: VersionModel[],
  random: Random,
): { durationFactor: Float64Array; errorFactor: Float64Array } {
  const n = endpoints.length
  const durationFactor = new Float64Array(versions.length * n).fill(1)
  const errorFactor = new Float64Array(versions.length * n).fill(1)
  const hotFirst = endpoints
    .map((e, i) => ({ e, i }))
    .filter(({ e }) => e.level > 0)
    .sort((a, b) => b.e.weight - a.e.weight)
  const openRegressions: Array<{ endpoint: number; factor: number }> = []
  const label = (i: number): string => `${endpoints[i]!.method} ${endpoints[i]!.route}`
  // Endpoints of the period's first half of releases, busiest more likely.
  const pickEndpoint = (v: number): number => {
    const available = hotFirst.filter(({ e }) => e.since <= v && v < e.until)
    const total = available.reduce((sum, { e }) => sum + Math.sqrt(e.weight), 0)
    let r = random.next() * total
    for (const { e, i } of available) {
      r -= Math.sqrt(e.weight)
      if (r < 0) return i
    }
    return available[available.length - 1]?.i ?? 0
  }
  for (let v = 1; v < versions.length; v++) {
    durationFactor.copyWithin(v * n, (v - 1) * n, v * n)
    const effects = versions[v]!.effects
    const change = (endpoint: number, factor: number, note: string): void => {
      durationFactor[v * n + endpoint] = durationFactor[v * n + endpoint]! * factor
      effects.push({ endpoint: label(endpoint), factor, note })
    }
    // The first releases always show one of each, so that even a short period has both.
    if (v === 1 || random.next() < 0.3) {
      const endpoint = v === 1 ? hotFirst[Math.min(2, hotFirst.length - 1)]!.i : pickEndpoint(v)
      const factor = random.between(1.35, 2.4)
      change(endpoint, factor, 'slower: a regression')
      openRegressions.push({ endpoint, factor })
    }
    if (v === 2 || random.next() < 0.3) {
      const open = openRegressions.length > 0 && random.next() < 0.5
      if (open) {
        const fixed = openRegressions.splice(random.int(openRegressions.length), 1)[0]!
        change(fixed.endpoint, 1 / fixed.factor, 'faster: the regression is fixed')
      } else {
        change(pickEndpoint(v), random.between(0.45, 0.8), 'faster: an optimisation')
      }
    }
    if (random.next() < 0.12) {
      const endpoint = pickEndpoint(v)
      errorFactor[v * n + endpoint] = 8
      effects.push({ endpoint: label(endpoint), factor: 1, note: 'a bug: 8x more 5xx' })
    }
    for (let i = 0; i < n; i++) {
      if (endpoints[i]!.since === v) effects.push({ endpoint: label(i), factor: 1, note: 'new' })
      if (endpoints[i]!.until === v)
        effects.push({ endpoint: label(i), factor: 1, note: 'removed' })
    }
  }
  return { durationFactor, errorFactor }
}
