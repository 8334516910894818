import { describe, expect, test } from 'vitest'
import type { ApiMethod, DashboardApi } from '../../src-main/api/contract.js'
import { WRITE_METHODS } from '../../src-main/api/contract.js'
import { callApi } from '../../src-main/api/dispatch.js'
import { DashboardError, toApiError } from '../../src-main/api/errors.js'
import { argsFromQuery, httpStatus, queryFromArgs } from '../../src-main/api/http.js'
import { API_METHODS, isApiMethod, validateArgs } from '../../src-main/api/validate.js'

const range = { from: 1_700_000_000_000, to: 1_700_086_400_000, utcOffsetMinutes: 60 }

function rejection(method: ApiMethod, args: unknown): string {
  try {
    validateArgs(method, args)
  } catch (error) {
    expect(error).toBeInstanceOf(DashboardError)
    expect((error as DashboardError).code).toBe('BAD_ARGUMENT')
    return (error as DashboardError).message
  }
  throw new Error(`${method} accepted ${JSON.stringify(args)}`)
}

describe('validators', () => {
  test('one per method of the contract', () => {
    expect(API_METHODS.sort()).toEqual(
      [
        'aboutFile',
        'clients',
        'compare',
        'endpoints',
        'hourHeatmap',
        'info',
        'latestErrors',
        'nodeBreakdown',
        'openFile',
        'outlier',
        'outlierTimeline',
        'outliers',
        'performance',
        'profile',
        'cpuProfile',
        'outlierCpuProfile',
        'setLevel',
        'setRetention',
        'statusCodes',
        'utilization',
        'versionEvolution',
        'versionUtilization',
      ].sort(),
    )
    expect(isApiMethod('toString')).toBe(false)
    expect(isApiMethod('__proto__')).toBe(false)
  })

  test('a good range passes; unknown fields are dropped; ids are de-duplicated', () => {
    expect(validateArgs('endpoints', { ...range, endpointIds: [3, 1, 3], extra: 'x' })).toEqual({
      ...range,
      endpointIds: [3, 1],
    })
    expect(validateArgs('info', undefined)).toEqual({})
    expect(validateArgs('info', { anything: 1 })).toEqual({})
  })

  test.each([
    [null, /"from" must be an integer/],
    ['range', /argument must be an object, got the string "range"/],
    [[1, 2], /argument must be an object, got an array/],
    [{ ...range, from: 1.5 }, /"from" must be an integer from 0 to/],
    [{ ...range, from: -1 }, /"from"/],
    [{ ...range, to: '1700086400000' }, /"to" must be an integer .*got the string/],
    [{ ...range, to: range.from }, /"to" .* must be later than "from"/],
    [{ ...range, to: range.from + 101 * 366 * 86_400_000 }, /more than 100 years/],
    [{ ...range, utcOffsetMinutes: 900 }, /"utcOffsetMinutes" must be an integer from -840 to 840/],
    [{ ...range, utcOffsetMinutes: undefined }, /"utcOffsetMinutes"/],
    [{ ...range, endpointIds: 3 }, /"endpointIds" must be an array/],
    [{ ...range, endpointIds: [1, 0] }, /"endpointIds" must hold endpoint ids/],
    [{ ...range, endpointIds: [1, '2'] }, /"endpointIds"/],
  ])('a bad range is refused: %j', (args, message) => {
    expect(rejection('utilization', args)).toMatch(message)
    expect(rejection('utilization', args)).toMatch(/^utilization: /)
  })

  test('endpointId: required where the view is about one endpoint, optional elsewhere', () => {
    expect(rejection('versionEvolution', range)).toMatch(/"endpointId" must be an integer/)
    expect(validateArgs('profile', { ...range, endpointId: 2, versionIds: [5, 5, 3] })).toEqual({
      ...range,
      endpointId: 2,
      versionIds: [5, 3],
    })
    expect(rejection('cpuProfile', { ...range, endpointId: 2, versionIds: [0] })).toMatch(
      /"versionIds" must hold version ids/,
    )
    expect(
      validateArgs('versionEvolution', { ...range, endpointId: 1, timeline: 'releases' }),
    ).toEqual({ ...range, endpointId: 1, timeline: 'releases' })
    expect(rejection('versionEvolution', { ...range, endpointId: 1, timeline: 'tags' })).toMatch(
      /"timeline" must be "versions", "lasting" or "releases"/,
    )
    expect(rejection('clients', { ...range, kind: 'user' })).toMatch(/"endpointId"/)
    expect(validateArgs('hourHeatmap', range)).toEqual(range)
    expect(validateArgs('statusCodes', { ...range, endpointId: 4 })).toEqual({
      ...range,
      endpointId: 4,
    })
    expect(rejection('hourHeatmap', { ...range, endpointId: 'all' })).toMatch(/"endpointId"/)
  })

  test('clients: kind, names, limit', () => {
    const base = { ...range, endpointId: 2 }
    expect(
      validateArgs('clients', { ...base, kind: 'ip', names: ['a', 'a', 'b'], limit: 5 }),
    ).toEqual({
      ...base,
      kind: 'ip',
      names: ['a', 'b'],
      limit: 5,
    })
    expect(rejection('clients', { ...base, kind: 'users' })).toMatch(
      /"kind" must be "user" or "ip"/,
    )
    expect(rejection('clients', { ...base, kind: 'user', names: 'a' })).toMatch(
      /"names" must be an array/,
    )
    expect(rejection('clients', { ...base, kind: 'user', names: [1] })).toMatch(
      /"names" must hold strings/,
    )
    expect(rejection('clients', { ...base, kind: 'user', limit: 101 })).toMatch(/"limit"/)
  })

  test('nodes: a filter of every range method, names without repeats', () => {
    expect(validateArgs('performance', { ...range, nodes: ['web-2', 'web-1', 'web-2'] })).toEqual({
      ...range,
      nodes: ['web-2', 'web-1'],
    })
    expect(rejection('utilization', { ...range, nodes: 'web-1' })).toMatch(
      /^utilization: "nodes" must be an array of at most 1000 names/,
    )
    expect(rejection('endpoints', { ...range, nodes: ['web-1', 7] })).toMatch(
      /"nodes" must hold strings, got 7/,
    )
    expect(rejection('endpoints', { ...range, nodes: ['x'.repeat(1001)] })).toMatch(/"nodes"/)
  })

  test('nodeBreakdown: a range, an optional endpoint, the node filter', () => {
    expect(validateArgs('nodeBreakdown', { ...range, endpointId: 3, nodes: ['a'] })).toEqual({
      ...range,
      endpointId: 3,
      nodes: ['a'],
    })
    expect(validateArgs('nodeBreakdown', range)).toEqual(range)
    expect(rejection('nodeBreakdown', { ...range, endpointId: 0 })).toMatch(
      /^nodeBreakdown: "endpointId"/,
    )
    const query = queryFromArgs('nodeBreakdown', { ...range, nodes: ['a,b', '(unknown)'] })
    expect(query).toContain('nodes=a%2Cb&nodes=%28unknown%29')
    expect(argsFromQuery('nodeBreakdown', new URLSearchParams(query))).toEqual({
      ...range,
      nodes: ['a,b', '(unknown)'],
    })
  })

  test('latestErrors: limit', () => {
    expect(validateArgs('latestErrors', { ...range, limit: 1000 })).toEqual({
      ...range,
      limit: 1000,
    })
    expect(rejection('latestErrors', { ...range, limit: 1001 })).toMatch(
      /"limit" must be an integer from 1 to 1000/,
    )
  })

  test('outliers: paging; outlier: an id; outlierTimeline: an endpoint', () => {
    expect(validateArgs('outliers', { ...range, offset: 40, limit: 20, endpointId: 3 })).toEqual({
      ...range,
      endpointId: 3,
      offset: 40,
      limit: 20,
    })
    expect(rejection('outliers', { ...range, limit: 201 })).toMatch(
      /"limit" must be an integer from 1 to 200/,
    )
    expect(rejection('outliers', { ...range, offset: -1 })).toMatch(/"offset"/)
    expect(validateArgs('outlier', { id: 7 })).toEqual({ id: 7 })
    expect(rejection('outlier', { id: 0 })).toMatch(/"id" must be an integer .*an outlier id/)
    expect(rejection('outlierTimeline', range)).toMatch(/"endpointId"/)
  })

  test('setLevel: an endpoint id and a level 0-3', () => {
    expect(validateArgs('setLevel', { endpointId: 1, level: 0 })).toEqual({
      endpointId: 1,
      level: 0,
    })
    expect(rejection('setLevel', { endpointId: 1, level: 4 })).toMatch(
      /"level" must be an integer from 0 to 3/,
    )
    expect(rejection('setLevel', { endpointId: 1, level: '2' })).toMatch(/"level"/)
    expect(rejection('setLevel', { level: 2 })).toMatch(/"endpointId"/)
  })

  test('setRetention: every limit given, null for none, each above its minimum', () => {
    const policy = {
      requestsMs: 7 * 86_400_000,
      outliersMs: null,
      profilesMs: 3_600_000,
      rollupsMs: null,
      maxFileSizeBytes: 2 * 1024 ** 3,
      sampleRowsPerSecond: 5,
    }
    expect(validateArgs('setRetention', { ...policy, extra: 1 })).toEqual(policy)
    expect(rejection('setRetention', { ...policy, requestsMs: 60_000 })).toMatch(
      /"requestsMs" must be null or at least 1 hour/,
    )
    expect(rejection('setRetention', { ...policy, maxFileSizeBytes: 1000 })).toMatch(
      /"maxFileSizeBytes" must be null or at least 10 MB/,
    )
    expect(rejection('setRetention', { ...policy, sampleRowsPerSecond: undefined })).toMatch(
      /"sampleRowsPerSecond"/,
    )
    expect(rejection('setRetention', { ...policy, rollupsMs: '30d' })).toMatch(/"rollupsMs"/)
  })

  test('compare: version ids, or time ranges [from, to)', () => {
    expect(validateArgs('compare', {})).toEqual({ baseline: [], candidate: [] })
    expect(validateArgs('compare', { baseline: [2, 2], candidate: [3] })).toEqual({
      baseline: [2],
      candidate: [3],
    })
    expect(
      validateArgs('compare', { baselineRange: [1000, 2000], candidateRange: [2000, 3000] }),
    ).toEqual({
      baseline: [],
      candidate: [],
      baselineRange: [1000, 2000],
      candidateRange: [2000, 3000],
    })
    expect(rejection('compare', { baselineRange: [2000, 1000] })).toMatch(
      /"baselineRange" must be \[from, to\]/,
    )
    expect(rejection('compare', { candidate: [0] })).toMatch(/"candidate" must hold version ids/)
    expect(validateArgs('compare', { test: 'mann-whitney' })).toEqual({
      baseline: [],
      candidate: [],
      test: 'mann-whitney',
    })
    expect(rejection('compare', { test: 'bootstrap' })).toMatch(
      /"test" must be "mood" or "mann-whitney", got .*bootstrap/,
    )
  })

  test('openFile: a path', () => {
    expect(validateArgs('openFile', { path: '/tmp/m.db' })).toEqual({ path: '/tmp/m.db' })
    expect(rejection('openFile', { path: '' })).toMatch(/"path" must be the path of a file/)
    expect(rejection('openFile', { path: 'a\0b' })).toMatch(/"path"/)
    expect(rejection('openFile', {})).toMatch(/"path"/)
  })
})

describe('callApi: one entry point for a transport', () => {
  const api = {
    info: () => Promise.resolve({ path: '/x' }),
    setLevel: (args: unknown) => Promise.resolve(args),
    endpoints: () =>
      Promise.reject(
        Object.assign(new Error('database disk image is malformed'), { code: 'SQLITE_CORRUPT' }),
      ),
  } as unknown as DashboardApi

  test('validates, calls, and answers data', async () => {
    expect(await callApi(api, 'info', undefined)).toEqual({ ok: true, value: { path: '/x' } })
    expect(await callApi(api, 'setLevel', { endpointId: 2, level: 1, junk: true })).toEqual({
      ok: true,
      value: { endpointId: 2, level: 1 },
    })
  })

  test('unknown methods, bad arguments and thrown errors become ApiErrors', async () => {
    expect(await callApi(api, 'constructor', {})).toMatchObject({
      ok: false,
      error: { code: 'BAD_ARGUMENT', message: expect.stringMatching(/unknown API method/) },
    })
    expect(await callApi(api, 'setLevel', { endpointId: 2 })).toMatchObject({
      ok: false,
      error: { code: 'BAD_ARGUMENT' },
    })
    expect(await callApi(api, 'endpoints', range)).toMatchObject({
      ok: false,
      error: { code: 'CORRUPT', message: expect.stringMatching(/malformed/) },
    })
  })

  test('toApiError keeps codes, maps SQLite, hides nothing else', () => {
    expect(toApiError(new DashboardError('TOO_NEW', 'newer'))).toEqual({
      code: 'TOO_NEW',
      message: 'newer',
    })
    expect(toApiError({ code: 'NO_FILE', message: 'none' })).toEqual({
      code: 'NO_FILE',
      message: 'none',
    })
    expect(
      toApiError(
        Object.assign(new Error('attempt to write a readonly database'), {
          code: 'SQLITE_READONLY',
        }),
      ).code,
    ).toBe('READ_ONLY')
    expect(toApiError(new TypeError('boom'))).toEqual({
      code: 'INTERNAL',
      message: 'Unexpected error: boom',
    })
    expect(toApiError('text')).toMatchObject({ code: 'INTERNAL' })
  })
})

describe('HTTP query strings', () => {
  test('numbers, number lists, repeated strings', () => {
    const query = new URLSearchParams(
      'from=10&to=20&utcOffsetMinutes=-300&endpointIds=1,2&endpointIds=3&endpointId=7&kind=user&names=a,b&names=c&limit=5&other=1',
    )
    expect(argsFromQuery('clients', query)).toEqual({
      from: 10,
      to: 20,
      utcOffsetMinutes: -300,
      endpointIds: [1, 2, 3],
      endpointId: 7,
      kind: 'user',
      names: ['a,b', 'c'],
      limit: 5,
    })
    expect(argsFromQuery('utilization', new URLSearchParams('endpointIds='))).toEqual({
      endpointIds: [],
    })
    // Not a number: left as text for the validator to name.
    expect(argsFromQuery('utilization', new URLSearchParams('from=12abc'))).toEqual({
      from: '12abc',
    })
  })

  test('round trip through queryFromArgs', () => {
    const args = {
      ...range,
      endpointId: 3,
      kind: 'ip' as const,
      names: ['10.0.0.1', '(none)'],
      limit: 4,
    }
    const back = argsFromQuery('clients', new URLSearchParams(queryFromArgs('clients', args)))
    expect(validateArgs('clients', back)).toEqual(args)
  })

  test('write methods are POST; statuses', () => {
    expect([...WRITE_METHODS].sort()).toEqual(['openFile', 'setLevel', 'setRetention'])
    expect(httpStatus({ code: 'BAD_ARGUMENT', message: '' })).toBe(400)
    expect(httpStatus({ code: 'NO_FILE', message: '' })).toBe(409)
    expect(httpStatus({ code: 'TOO_NEW', message: '' })).toBe(422)
    expect(httpStatus({ code: 'INTERNAL', message: '' })).toBe(500)
  })
})
