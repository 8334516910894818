/**
 * Web mode's wire format. Read methods are `GET /api/<method>?<args>`:
 * numbers as decimals, number arrays comma-separated (`endpointIds=1,2,3`,
 * empty for none), string arrays as repeated keys (`names=a&names=b`, since
 * a name may hold a comma). Write methods are `POST /api/<method>` with the
 * argument as a JSON body. Errors come back as `{ error: ApiError }`.
 */
import type { ApiError, ApiMethod } from './contract.js'
import { WRITE_METHODS } from './contract.js'

type FieldKind = 'number' | 'numbers' | 'string' | 'strings'

const RANGE = {
  from: 'number',
  to: 'number',
  utcOffsetMinutes: 'number',
  endpointIds: 'numbers',
  nodes: 'strings',
} as const

/** How each read method's fields are spelled in a query string. */
export const QUERY_FIELDS: { readonly [M in ApiMethod]: Readonly<Record<string, FieldKind>> } = {
  info: {},
  openFile: { path: 'string' },
  endpoints: RANGE,
  utilization: RANGE,
  hourHeatmap: { ...RANGE, endpointId: 'number' },
  performance: RANGE,
  versionEvolution: { ...RANGE, endpointId: 'number', timeline: 'string' },
  versionUtilization: RANGE,
  clients: { ...RANGE, endpointId: 'number', kind: 'string', names: 'strings', limit: 'number' },
  statusCodes: { ...RANGE, endpointId: 'number' },
  latestErrors: { ...RANGE, endpointId: 'number', limit: 'number' },
  nodeBreakdown: { ...RANGE, endpointId: 'number' },
  outliers: { ...RANGE, endpointId: 'number', offset: 'number', limit: 'number' },
  outlier: { id: 'number' },
  outlierTimeline: { ...RANGE, endpointId: 'number' },
  aboutFile: {},
  profile: { ...RANGE, endpointId: 'number', versionIds: 'numbers' },
  cpuProfile: { ...RANGE, endpointId: 'number', versionIds: 'numbers' },
  outlierCpuProfile: { id: 'number' },
  compare: {
    baseline: 'numbers',
    candidate: 'numbers',
    baselineRange: 'numbers',
    candidateRange: 'numbers',
    test: 'string',
  },
  setLevel: { endpointId: 'number', level: 'number' },
  setRetention: {},
}

export function isWriteMethod(method: ApiMethod): boolean {
  return WRITE_METHODS.includes(method)
}

const NUMBER = /^-?\d+(?:\.\d+)?(?:e[+-]?\d+)?$/i

/** A decimal becomes a number; anything else stays a string for the validator to name. */
function parseNumber(text: string): number | string {
  const trimmed = text.trim()
  return NUMBER.test(trimmed) ? Number(trimmed) : text
}

/**
 * A read method's argument from a query string, not yet validated.
 * Unknown keys are left out, as the validators drop them too.
 */
export function argsFromQuery(method: ApiMethod, query: URLSearchParams): Record<string, unknown> {
  const args: Record<string, unknown> = {}
  for (const [name, kind] of Object.entries(QUERY_FIELDS[method])) {
    const values = query.getAll(name)
    if (values.length === 0) continue
    switch (kind) {
      case 'number':
        args[name] = values.length === 1 ? parseNumber(values[0]!) : values
        break
      case 'numbers':
        args[name] = values
          .flatMap((value) => value.split(','))
          .filter((part) => part.trim() !== '')
          .map(parseNumber)
        break
      case 'string':
        args[name] = values.length === 1 ? values[0] : values
        break
      case 'strings':
        args[name] = values
        break
    }
  }
  return args
}

/** The query string of a read method's argument (for web clients and tests). */
export function queryFromArgs(method: ApiMethod, args: object): string {
  const query = new URLSearchParams()
  const fields = QUERY_FIELDS[method]
  for (const [name, value] of Object.entries(args)) {
    const kind = fields[name]
    if (kind === undefined || value === undefined) continue
    if (kind === 'numbers') query.set(name, (value as number[]).join(','))
    else if (kind === 'strings') for (const item of value as string[]) query.append(name, item)
    else query.set(name, String(value))
  }
  return query.toString()
}

/** HTTP status of an API error. */
export function httpStatus(error: ApiError): number {
  switch (error.code) {
    case 'BAD_ARGUMENT':
      return 400
    case 'READ_ONLY':
      return 403
    case 'FILE_MISSING':
      return 404
    case 'NO_FILE':
      return 409
    case 'FILE_EMPTY':
    case 'NOT_SQLITE':
    case 'CORRUPT':
    case 'OTHER_APP':
    case 'TOO_NEW':
      return 422
    case 'CANCELLED':
      return 409
    // A server this one talks to for the user failed: a gateway's error.
    case 'WRONG_TOKEN':
    case 'UNREACHABLE':
    case 'NOT_ROUTEMETER':
    case 'DOWNLOAD_FAILED':
      return 502
    case 'INTERNAL':
      return 500
  }
}
