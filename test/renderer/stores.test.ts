/**
 * The renderer's stores with a fake transport in place of the preload or
 * HTTP: the real actions, their loading and error states, stale answers,
 * live refresh and the date range arithmetic.
 */
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest'
import type {
  ApiError,
  DashboardBridge,
  Endpoint,
  FileEvent,
  FileInfo,
  OverviewRow,
  RangeArgs,
} from '../../src-main/api/contract'

type Deferred<T> = { promise: Promise<T>; resolve(value: T): void; reject(error: unknown): void }
function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

const DAY = 86_400_000
const NOW = Date.UTC(2026, 10, 20, 15, 30)

function info(overrides: Partial<FileInfo> = {}): FileInfo {
  return {
    path: '/data/metrics.db',
    sizeBytes: 4096,
    schemaVersion: 1,
    requestCount: 10,
    endpointCount: 1,
    firstRequest: NOW - 20 * DAY,
    lastRequest: NOW - 1000,
    rawSince: 0,
    createdAt: NOW - 20 * DAY,
    demo: false,
    nodes: [],
    damaged: null,
    ...overrides,
  }
}

function row(id: number, hits: number): OverviewRow {
  const stats = { hits, errors4xx: 0, errors5xx: 0, medianUs: 1000, p95Us: 2000 }
  return {
    id,
    method: 'GET',
    route: `/r${id}`,
    level: 1,
    lastRequested: NOW,
    firstSeen: NOW - DAY,
    today: stats,
    week: stats,
    range: stats,
    outliers: 0,
  }
}

/** A transport whose every method is a vi.fn the test sets up. */
function fakeBridge() {
  const fail = (): Promise<never> => Promise.reject(new Error('not set up'))
  return {
    transport: 'web' as const,
    info: vi.fn<DashboardBridge['info']>(fail),
    openFile: vi.fn<DashboardBridge['openFile']>(fail),
    endpoints: vi.fn<DashboardBridge['endpoints']>(fail),
    utilization: vi.fn<DashboardBridge['utilization']>(fail),
    hourHeatmap: vi.fn<DashboardBridge['hourHeatmap']>(fail),
    performance: vi.fn<DashboardBridge['performance']>(fail),
    versionEvolution: vi.fn<DashboardBridge['versionEvolution']>(fail),
    versionUtilization: vi.fn<DashboardBridge['versionUtilization']>(fail),
    clients: vi.fn<DashboardBridge['clients']>(fail),
    statusCodes: vi.fn<DashboardBridge['statusCodes']>(fail),
    latestErrors: vi.fn<DashboardBridge['latestErrors']>(fail),
    nodeBreakdown: vi.fn<DashboardBridge['nodeBreakdown']>(fail),
    outliers: vi.fn<DashboardBridge['outliers']>(fail),
    outlier: vi.fn<DashboardBridge['outlier']>(fail),
    outlierTimeline: vi.fn<DashboardBridge['outlierTimeline']>(fail),
    aboutFile: vi.fn<DashboardBridge['aboutFile']>(fail),
    compare: vi.fn<DashboardBridge['compare']>(fail),
    profile: vi.fn<DashboardBridge['profile']>(fail),
    cpuProfile: vi.fn<DashboardBridge['cpuProfile']>(fail),
    outlierCpuProfile: vi.fn<DashboardBridge['outlierCpuProfile']>(fail),
    setLevel: vi.fn<DashboardBridge['setLevel']>(fail),
    setRetention: vi.fn<DashboardBridge['setRetention']>(fail),
    onFileEvent: vi.fn<DashboardBridge['onFileEvent']>(() => () => undefined),
    chooseFile: vi.fn<DashboardBridge['chooseFile']>(() => Promise.resolve(null)),
  } satisfies DashboardBridge
}

let bridge: ReturnType<typeof fakeBridge>
let stores: {
  file: typeof import('../../src-renderer/stores/file')
  filters: typeof import('../../src-renderer/stores/filters')
  endpoints: typeof import('../../src-renderer/stores/endpoints')
  api: typeof import('../../src-renderer/api')
}

beforeAll(async () => {
  // The API module picks its transport from `window` when it loads.
  vi.stubGlobal('window', { routemeter: fakeBridge() })
  stores = {
    api: await import('../../src-renderer/api'),
    file: await import('../../src-renderer/stores/file'),
    filters: await import('../../src-renderer/stores/filters'),
    endpoints: await import('../../src-renderer/stores/endpoints'),
  }
})

beforeEach(() => {
  bridge = fakeBridge()
  stores.api.setTransport(bridge)
  setActivePinia(createPinia())
})

afterEach(() => {
  vi.useRealTimers()
})

describe('file store', () => {
  test('a refused file is an error to show; loading ends either way', async () => {
    const refusal: ApiError = { code: 'TOO_NEW', message: 'written by a newer Routemeter' }
    bridge.info.mockRejectedValueOnce(refusal)
    const file = stores.file.useFileStore()
    await file.load()
    expect(file.error).toEqual(refusal)
    expect(file.ready).toBe(false)
    expect(file.loading).toBe(false)
    bridge.info.mockResolvedValueOnce(info())
    await file.load()
    expect(file.error).toBeNull()
    expect(file.ready).toBe(true)
  })

  test('a burst of changes makes one refresh; an error event is a banner over the data', async () => {
    vi.useFakeTimers()
    bridge.info.mockResolvedValue(info())
    const file = stores.file.useFileStore()
    await file.load()
    const before = file.revision
    for (let i = 0; i < 5; i++) file.handleEvent({ kind: 'changed' })
    expect(file.revision).toBe(before)
    await vi.advanceTimersByTimeAsync(stores.file.REFRESH_THROTTLE_MS)
    expect(file.revision).toBe(before + 1)
    expect(bridge.info).toHaveBeenCalledTimes(2)

    const lost: FileEvent = { kind: 'error', error: { code: 'INTERNAL', message: 'lost' } }
    file.handleEvent(lost)
    expect(file.warning?.message).toBe('lost')
    expect(file.ready).toBe(true)
    file.handleEvent({ kind: 'opened', info: info({ path: '/other.db' }) })
    expect(file.warning).toBeNull()
    expect(file.info?.path).toBe('/other.db')
  })

  test('opening a refused file keeps the open one and says why', async () => {
    bridge.info.mockResolvedValue(info())
    bridge.openFile.mockRejectedValueOnce({ code: 'NOT_SQLITE', message: 'not a database' })
    const file = stores.file.useFileStore()
    await file.load()
    expect(await file.open('/tmp/notes.txt')).toBe(false)
    expect(file.openError).toEqual({ code: 'NOT_SQLITE', message: 'not a database' })
    expect(file.info?.path).toBe('/data/metrics.db')
  })
})

describe('filters store', () => {
  test('presets are whole days in the viewer offset, ending with today', async () => {
    vi.useFakeTimers({ now: NOW })
    bridge.info.mockResolvedValue(info())
    const file = stores.file.useFileStore()
    await file.load()
    const filters = stores.filters.useFiltersStore()
    filters.utc = true
    filters.setPreset('7d')
    const tomorrow = Date.UTC(2026, 10, 21)
    expect(filters.range).toEqual({ from: tomorrow - 7 * DAY, to: tomorrow })
    filters.setPreset('all')
    expect(filters.range).toEqual({
      from: Date.UTC(2026, 9, 31),
      to: tomorrow,
    })
    filters.setPreset('custom')
    filters.customFrom = '2026-11-01'
    filters.customTo = '2026-11-03'
    expect(filters.range).toEqual({ from: Date.UTC(2026, 10, 1), to: Date.UTC(2026, 10, 4) })
    expect(filters.rangeArgs.utcOffsetMinutes).toBe(0)
  })

  test('the selection narrows the range arguments, sorted; another file clears it', async () => {
    bridge.info.mockResolvedValue(info())
    const file = stores.file.useFileStore()
    const filters = stores.filters.useFiltersStore()
    await file.load()
    filters.toggleSelected(9)
    filters.toggleSelected(3)
    expect(filters.rangeArgs.endpointIds).toEqual([3, 9])
    expect(filters.allEndpointsArgs.endpointIds).toBeUndefined()
    filters.toggleSelected(9)
    expect(filters.selectedIds).toEqual([3])
    file.handleEvent({ kind: 'opened', info: info({ path: '/another.db' }) })
    await Promise.resolve()
    expect(filters.selectedIds).toEqual([])
  })

  test('the default range: all of an old file, 7 days of a young one, else 30 days', () => {
    const { defaultPreset } = stores.filters
    expect(defaultPreset(info({ lastRequest: NOW - 90 * DAY }), NOW)).toBe('all')
    expect(defaultPreset(info({ firstRequest: NOW - 2 * DAY }), NOW)).toBe('7d')
    expect(defaultPreset(info(), NOW)).toBe('30d')
    expect(defaultPreset(info({ firstRequest: null, lastRequest: null }), NOW)).toBe('7d')
  })
})

describe('endpoints store', () => {
  const args: RangeArgs = { from: 0, to: DAY, utcOffsetMinutes: 0 }

  test('an answer that arrives after a newer one is dropped', async () => {
    const slow = deferred<OverviewRow[]>()
    const fast = deferred<OverviewRow[]>()
    bridge.endpoints.mockReturnValueOnce(slow.promise).mockReturnValueOnce(fast.promise)
    const endpoints = stores.endpoints.useEndpointsStore()
    const first = endpoints.load(args)
    const second = endpoints.load({ ...args, to: 2 * DAY })
    fast.resolve([row(1, 5), row(2, 9)])
    await second
    expect(endpoints.loading).toBe(false)
    slow.resolve([row(1, 1)])
    await first
    expect(endpoints.rows.map((r) => r.id)).toEqual([1, 2])
    expect(endpoints.busiestFirst.map((r) => r.id)).toEqual([2, 1])
    expect(endpoints.label(2)).toBe('GET /r2')
  })

  test('setLevel shows the level the file now has, or why it could not be written', async () => {
    bridge.endpoints.mockResolvedValue([row(1, 5)])
    const endpoints = stores.endpoints.useEndpointsStore()
    await endpoints.load(args)
    const saved: Endpoint = { ...row(1, 5), level: 3 }
    bridge.setLevel.mockResolvedValueOnce(saved)
    const saving = endpoints.setLevel(1, 3)
    expect(endpoints.levelOutcome[1]).toEqual({ state: 'saving', level: 3 })
    await saving
    expect(endpoints.levelOutcome[1]).toEqual({ state: 'saved', level: 3 })
    expect(endpoints.rows[0]?.level).toBe(3)

    bridge.setLevel.mockRejectedValueOnce({ code: 'READ_ONLY', message: 'read-only file' })
    await endpoints.setLevel(1, 0)
    expect(endpoints.levelOutcome[1]).toEqual({
      state: 'failed',
      level: 0,
      error: { code: 'READ_ONLY', message: 'read-only file' },
    })
    expect(endpoints.rows[0]?.level).toBe(3)
  })
})
