/**
 * Runtime checks of every API method's argument. The types of contract.ts
 * vanish at run time, and both transports (IPC from the renderer, HTTP from
 * any browser) hand the services whatever they were sent: each validator
 * returns a clean argument of the method's type or throws BAD_ARGUMENT with
 * a message that names the field. Unknown fields are dropped, not refused:
 * TypeScript lets a caller pass a wider object than the parameter's type.
 */
import type {
  ApiArgs,
  ApiMethod,
  ClientArgs,
  CompareArgs,
  EndpointArgs,
  HeatmapArgs,
  MonitorLevel,
  NodeArgs,
  OutlierArgs,
  ProfileArgs,
  RangeArgs,
  RetentionSettings,
  SetLevelArgs,
  SourceRef,
  SourcesArgs,
  SourcesMethod,
  StatusArgs,
  VersionEvolutionArgs,
} from './contract.js'
import { badArgument } from './errors.js'
import { MIN_FILE_SIZE_BYTES, MIN_RETENTION_MS } from 'routemeter/schema'

type Fields = Record<string, unknown>

/** Latest supported time, ms since the epoch (year 9999): keeps day numbers small. */
const MAX_TIME = 253_402_300_799_999
/** Longest range, so that per-day arrays stay a sane size. */
const MAX_RANGE_DAYS = 36_525
const MAX_IDS = 10_000
const MAX_NAMES = 100
const MAX_NODES = 1000
const MAX_NAME_LENGTH = 1000
const MAX_PATH_LENGTH = 4096
export const DEFAULT_CLIENT_LIMIT = 10
export const MAX_CLIENT_LIMIT = 100
export const DEFAULT_ERROR_LIMIT = 50
export const MAX_ERROR_LIMIT = 1000
export const DEFAULT_OUTLIER_LIMIT = 20
export const MAX_OUTLIER_LIMIT = 200

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return typeof value
}

function fieldsOf(method: ApiMethod, args: unknown): Fields {
  // A method without arguments may be called with nothing at all.
  if (args === undefined || args === null) return {}
  if (typeof args !== 'object' || Array.isArray(args)) {
    throw badArgument(`${method}: the argument must be an object, got ${describe(args)}`)
  }
  return args as Fields
}

function integer(
  method: ApiMethod,
  fields: Fields,
  name: string,
  min: number,
  max: number,
  unit = '',
): number {
  const value = fields[name]
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw badArgument(
      `${method}: "${name}" must be an integer from ${min} to ${max}${unit}, got ${describe(value)}`,
    )
  }
  return value
}

function optionalInteger(
  method: ApiMethod,
  fields: Fields,
  name: string,
  min: number,
  max: number,
): number | undefined {
  return fields[name] === undefined ? undefined : integer(method, fields, name, min, max)
}

function endpointId(method: ApiMethod, fields: Fields, name = 'endpointId'): number {
  return integer(method, fields, name, 1, Number.MAX_SAFE_INTEGER, ' (an endpoint id)')
}

/** An optional array of distinct ids (positive integers) of `what`. */
function idList(
  method: ApiMethod,
  fields: Fields,
  name: string,
  what: string,
): number[] | undefined {
  const ids = fields[name]
  if (ids === undefined) return undefined
  if (!Array.isArray(ids) || ids.length > MAX_IDS) {
    throw badArgument(
      `${method}: "${name}" must be an array of at most ${MAX_IDS} ${what} ids, got ${describe(ids)}`,
    )
  }
  for (const id of ids as unknown[]) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 1) {
      throw badArgument(
        `${method}: "${name}" must hold ${what} ids (positive integers), got ${describe(id)}`,
      )
    }
  }
  return [...new Set(ids as number[])]
}

function range(method: ApiMethod, fields: Fields): RangeArgs {
  const from = integer(method, fields, 'from', 0, MAX_TIME, ' (ms since the epoch)')
  const to = integer(method, fields, 'to', 0, MAX_TIME, ' (ms since the epoch)')
  if (to <= from) {
    throw badArgument(`${method}: "to" (${to}) must be later than "from" (${from})`)
  }
  if (to - from > MAX_RANGE_DAYS * 86_400_000) {
    throw badArgument(`${method}: the range from "from" to "to" spans more than 100 years`)
  }
  const utcOffsetMinutes = integer(method, fields, 'utcOffsetMinutes', -840, 840, ' (minutes)')
  const args: RangeArgs = { from, to, utcOffsetMinutes }
  const ids = idList(method, fields, 'endpointIds', 'endpoint')
  if (ids !== undefined) args.endpointIds = ids
  const nodes = names(method, fields, 'nodes', MAX_NODES)
  if (nodes !== undefined) args.nodes = nodes
  return args
}

/** An optional array of names (users, IPs, nodes), without repeats. */
function names(method: ApiMethod, fields: Fields, name: string, max: number): string[] | undefined {
  const list = fields[name]
  if (list === undefined) return undefined
  if (!Array.isArray(list) || list.length > max) {
    throw badArgument(
      `${method}: "${name}" must be an array of at most ${max} names, got ${describe(list)}`,
    )
  }
  for (const item of list as unknown[]) {
    if (typeof item !== 'string' || item.length > MAX_NAME_LENGTH) {
      throw badArgument(`${method}: "${name}" must hold strings, got ${describe(item)}`)
    }
  }
  return [...new Set(list as string[])]
}

function withEndpoint(method: ApiMethod, fields: Fields): EndpointArgs {
  return { ...range(method, fields), endpointId: endpointId(method, fields) }
}

function withOptionalEndpoint(method: ApiMethod, fields: Fields): HeatmapArgs & StatusArgs {
  const args: HeatmapArgs = range(method, fields)
  if (fields.endpointId !== undefined) args.endpointId = endpointId(method, fields)
  return args
}

function profileArgs(method: ApiMethod, fields: Fields): ProfileArgs {
  const result: ProfileArgs = withEndpoint(method, fields)
  const versionIds = idList(method, fields, 'versionIds', 'version')
  return versionIds === undefined ? result : { ...result, versionIds }
}

function monitorLevel(method: ApiMethod, fields: Fields): MonitorLevel {
  return integer(method, fields, 'level', 0, 3, ' (a monitor level)') as MonitorLevel
}

type Validators = { readonly [M in ApiMethod]: (args: unknown) => ApiArgs<M> }

/** One validator per method; the mapped type makes a missing or renamed method a build error. */
export const VALIDATORS: Validators = {
  info: () => ({}),
  openFile: (args) => {
    const path = fieldsOf('openFile', args).path
    if (
      typeof path !== 'string' ||
      path.trim() === '' ||
      path.length > MAX_PATH_LENGTH ||
      path.includes('\0')
    ) {
      throw badArgument(`openFile: "path" must be the path of a file, got ${describe(path)}`)
    }
    return { path }
  },
  endpoints: (args) => range('endpoints', fieldsOf('endpoints', args)),
  utilization: (args) => range('utilization', fieldsOf('utilization', args)),
  hourHeatmap: (args) => withOptionalEndpoint('hourHeatmap', fieldsOf('hourHeatmap', args)),
  performance: (args) => range('performance', fieldsOf('performance', args)),
  versionEvolution: (args): VersionEvolutionArgs => {
    const fields = fieldsOf('versionEvolution', args)
    const result: VersionEvolutionArgs = withEndpoint('versionEvolution', fields)
    const { timeline } = fields
    if (timeline === undefined) return result
    if (timeline !== 'versions' && timeline !== 'lasting' && timeline !== 'releases') {
      throw badArgument(
        `versionEvolution: "timeline" must be "versions", "lasting" or "releases", got ${describe(timeline)}`,
      )
    }
    return { ...result, timeline }
  },
  versionUtilization: (args) => range('versionUtilization', fieldsOf('versionUtilization', args)),
  clients: (args) => {
    const fields = fieldsOf('clients', args)
    const kind = fields.kind
    if (kind !== 'user' && kind !== 'ip') {
      throw badArgument(`clients: "kind" must be "user" or "ip", got ${describe(kind)}`)
    }
    const result: ClientArgs = { ...withEndpoint('clients', fields), kind }
    const chosen = names('clients', fields, 'names', MAX_NAMES)
    if (chosen !== undefined) result.names = chosen
    const limit = optionalInteger('clients', fields, 'limit', 1, MAX_CLIENT_LIMIT)
    if (limit !== undefined) result.limit = limit
    return result
  },
  statusCodes: (args) => withOptionalEndpoint('statusCodes', fieldsOf('statusCodes', args)),
  latestErrors: (args) => {
    const fields = fieldsOf('latestErrors', args)
    const result: StatusArgs & { limit?: number } = withOptionalEndpoint('latestErrors', fields)
    const limit = optionalInteger('latestErrors', fields, 'limit', 1, MAX_ERROR_LIMIT)
    if (limit !== undefined) result.limit = limit
    return result
  },
  nodeBreakdown: (args): NodeArgs =>
    withOptionalEndpoint('nodeBreakdown', fieldsOf('nodeBreakdown', args)),
  outliers: (args): OutlierArgs => {
    const fields = fieldsOf('outliers', args)
    const result: OutlierArgs = withOptionalEndpoint('outliers', fields)
    const offset = optionalInteger('outliers', fields, 'offset', 0, Number.MAX_SAFE_INTEGER)
    if (offset !== undefined) result.offset = offset
    const limit = optionalInteger('outliers', fields, 'limit', 1, MAX_OUTLIER_LIMIT)
    if (limit !== undefined) result.limit = limit
    return result
  },
  outlier: (args) => ({
    id: integer(
      'outlier',
      fieldsOf('outlier', args),
      'id',
      1,
      Number.MAX_SAFE_INTEGER,
      ' (an outlier id)',
    ),
  }),
  outlierTimeline: (args) => withEndpoint('outlierTimeline', fieldsOf('outlierTimeline', args)),
  aboutFile: () => ({}),
  profile: (args) => profileArgs('profile', fieldsOf('profile', args)),
  cpuProfile: (args) => profileArgs('cpuProfile', fieldsOf('cpuProfile', args)),
  outlierCpuProfile: (args) => ({
    id: integer(
      'outlierCpuProfile',
      fieldsOf('outlierCpuProfile', args),
      'id',
      1,
      Number.MAX_SAFE_INTEGER,
      ' (an outlier id)',
    ),
  }),
  compare: (args): CompareArgs => {
    const fields = fieldsOf('compare', args)
    const result: CompareArgs = {
      baseline: idList('compare', fields, 'baseline', 'version') ?? [],
      candidate: idList('compare', fields, 'candidate', 'version') ?? [],
    }
    if (fields.test !== undefined) {
      if (fields.test !== 'mood' && fields.test !== 'mann-whitney') {
        throw badArgument(
          `compare: "test" must be "mood" or "mann-whitney", got ${describe(fields.test)}`,
        )
      }
      result.test = fields.test
    }
    for (const name of ['baselineRange', 'candidateRange'] as const) {
      const value = fields[name]
      if (value === undefined) continue
      const valid =
        Array.isArray(value) &&
        value.length === 2 &&
        value.every(
          (t) => typeof t === 'number' && Number.isInteger(t) && t >= 0 && t <= MAX_TIME,
        ) &&
        (value[0] as number) < (value[1] as number)
      if (!valid) {
        throw badArgument(
          `compare: "${name}" must be [from, to] in ms since the epoch, from before to, got ${describe(value)}`,
        )
      }
      result[name] = [value[0] as number, value[1] as number]
    }
    return result
  },
  setLevel: (args): SetLevelArgs => {
    const fields = fieldsOf('setLevel', args)
    return { endpointId: endpointId('setLevel', fields), level: monitorLevel('setLevel', fields) }
  },
  setRetention: (args): RetentionSettings => {
    const fields = fieldsOf('setRetention', args)
    // Each field is required: null says "no limit" explicitly.
    const limit = (name: keyof RetentionSettings, min: number, what: string): number | null => {
      const value = fields[name]
      if (value === null) return null
      if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > MAX_TIME) {
        throw badArgument(`setRetention: "${name}" must be null or ${what}, got ${describe(value)}`)
      }
      return value
    }
    return {
      requestsMs: limit('requestsMs', MIN_RETENTION_MS, 'at least 1 hour in ms'),
      outliersMs: limit('outliersMs', MIN_RETENTION_MS, 'at least 1 hour in ms'),
      profilesMs: limit('profilesMs', MIN_RETENTION_MS, 'at least 1 hour in ms'),
      rollupsMs: limit('rollupsMs', MIN_RETENTION_MS, 'at least 1 hour in ms'),
      maxFileSizeBytes: limit('maxFileSizeBytes', MIN_FILE_SIZE_BYTES, 'at least 10 MB in bytes'),
      sampleRowsPerSecond: limit('sampleRowsPerSecond', 0.001, 'a positive number of rows'),
    }
  },
}

/** Every method of the API, in the contract's order. */
export const API_METHODS = Object.keys(VALIDATORS) as ApiMethod[]

export function isApiMethod(name: unknown): name is ApiMethod {
  return typeof name === 'string' && Object.hasOwn(VALIDATORS, name)
}

/** Checks a method's argument; throws a DashboardError (BAD_ARGUMENT) when it is not valid. */
export function validateArgs<M extends ApiMethod>(method: M, args: unknown): ApiArgs<M> {
  const validator = VALIDATORS[method] as (args: unknown) => ApiArgs<M>
  return validator(args)
}

// ---- sources: servers, pulled copies, merged datasets ----------------------------------------

const MAX_URL_LENGTH = 2048
const MAX_TOKEN_LENGTH = 4096

function text(
  method: SourcesMethod,
  fields: Fields,
  name: string,
  max: number,
  what: string,
): string {
  const value = fields[name]
  if (
    typeof value !== 'string' ||
    value.trim() === '' ||
    value.length > max ||
    value.includes('\0')
  ) {
    throw badArgument(`${method}: "${name}" must be ${what}, got ${describe(value)}`)
  }
  return value.trim()
}

function sourcesFields(method: SourcesMethod, args: unknown): Fields {
  if (args === undefined || args === null) return {}
  if (typeof args !== 'object' || Array.isArray(args)) {
    throw badArgument(`${method}: the argument must be an object, got ${describe(args)}`)
  }
  return args as Fields
}

function serverIdOf(method: SourcesMethod, fields: Fields): string {
  const id = text(method, fields, 'serverId', 64, 'the id of an added server')
  if (!/^[0-9a-f]{1,64}$/.test(id)) throw badArgument(`${method}: "serverId" is not a server id`)
  return id
}

type SourcesValidators = {
  readonly [M in SourcesMethod]: (args: unknown) => SourcesArgs<M>
}

export const SOURCES_VALIDATORS: SourcesValidators = {
  state: () => ({}),
  addServer: (args) => {
    const fields = sourcesFields('addServer', args)
    return {
      url: text('addServer', fields, 'url', MAX_URL_LENGTH, "the app's URL"),
      token: text('addServer', fields, 'token', MAX_TOKEN_LENGTH, "the server's token"),
    }
  },
  removeServer: (args) => ({
    serverId: serverIdOf('removeServer', sourcesFields('removeServer', args)),
  }),
  pull: (args) => ({ serverId: serverIdOf('pull', sourcesFields('pull', args)) }),
  cancelPull: () => ({}),
  refresh: () => ({}),
  open: (args) => {
    const list = sourcesFields('open', args).sources
    if (!Array.isArray(list) || list.length === 0 || list.length > 100) {
      throw badArgument(
        `open: "sources" must be a list of files and servers, got ${describe(list)}`,
      )
    }
    const sources: SourceRef[] = (list as unknown[]).map((item) => {
      const fields = sourcesFields('open', item)
      if (fields.kind === 'server') return { kind: 'server', serverId: serverIdOf('open', fields) }
      if (fields.kind === 'file') {
        return {
          kind: 'file',
          path: text('open', fields, 'path', MAX_PATH_LENGTH, 'the path of a file'),
        }
      }
      throw badArgument(
        `open: each source has "kind" "file" or "server", got ${describe(fields.kind)}`,
      )
    })
    return { sources }
  },
  setLevel: (args) => VALIDATORS.setLevel(args),
}

export const SOURCES_METHODS = Object.keys(SOURCES_VALIDATORS) as SourcesMethod[]

export function isSourcesMethod(name: unknown): name is SourcesMethod {
  return typeof name === 'string' && Object.hasOwn(SOURCES_VALIDATORS, name)
}

export function validateSourcesArgs<M extends SourcesMethod>(
  method: M,
  args: unknown,
): SourcesArgs<M> {
  const validator = SOURCES_VALIDATORS[method] as (args: unknown) => SourcesArgs<M>
  return validator(args)
}
