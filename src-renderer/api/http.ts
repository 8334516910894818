import { isApiError } from './errors'
import {
  WRITE_METHODS,
  type ApiArgs,
  type ApiError,
  type ApiMethod,
  type ApiResult,
  type DashboardBridge,
  type FileEvent,
  type SourcesApi,
  type SourcesArgs,
  type SourcesMethod,
  type SourcesResult,
} from './types'

/** Thrown by the web transport: an ApiError that is also an Error. */
class HttpApiError extends Error implements ApiError {
  constructor(
    readonly code: ApiError['code'],
    message: string,
  ) {
    super(message)
  }
}

/** Reads go in the query string: numbers, comma-separated number arrays, repeated strings. */
export function toQuery(args: object): URLSearchParams {
  const query = new URLSearchParams()
  for (const [key, value] of Object.entries(args)) {
    if (value === undefined || value === null) continue
    if (Array.isArray(value)) {
      if (value.length === 0) continue
      if (value.every((item) => typeof item === 'number')) query.set(key, value.join(','))
      else for (const item of value) query.append(key, String(item))
    } else query.set(key, String(value))
  }
  return query
}

/**
 * The web-mode transport: the same DashboardBridge as the desktop preload,
 * over `GET|POST /api/<method>` and server-sent events on `/api/events`.
 */
export function createHttpBridge(base = new URL('api/', document.baseURI)): DashboardBridge {
  /** GET `url`, or POST `args` as JSON to it; an error answer becomes an ApiError. */
  async function send(url: URL, post: object | null): Promise<unknown> {
    let response: Response
    try {
      response = await fetch(
        url,
        post === null
          ? undefined
          : {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(post),
            },
      )
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error)
      throw new HttpApiError(
        'INTERNAL',
        `Cannot reach the Routemeter server at ${base.origin} (${reason}). Is it still running?`,
      )
    }
    const body: unknown = await response.json().catch(() => undefined)
    if (!response.ok) {
      const error = (body as { error?: unknown } | undefined)?.error
      if (isApiError(error)) throw new HttpApiError(error.code, error.message)
      throw new HttpApiError(
        'INTERNAL',
        `The server answered ${response.status} ${response.statusText}`,
      )
    }
    return body
  }

  async function call<M extends ApiMethod>(method: M, args: ApiArgs<M>): Promise<ApiResult<M>> {
    const write = WRITE_METHODS.includes(method)
    const url = new URL(method, base)
    if (!write) url.search = toQuery(args).toString()
    return (await send(url, write ? args : null)) as ApiResult<M>
  }

  /** Servers and datasets: GET /api/sources/state, POST for the others. */
  async function callSources<M extends SourcesMethod>(
    method: M,
    args: SourcesArgs<M>,
  ): Promise<SourcesResult<M>> {
    const url = new URL(`sources/${method}`, base)
    return (await send(url, method === 'state' ? null : args)) as SourcesResult<M>
  }

  const sources: SourcesApi = {
    state: (args) => callSources('state', args),
    addServer: (args) => callSources('addServer', args),
    removeServer: (args) => callSources('removeServer', args),
    pull: (args) => callSources('pull', args),
    cancelPull: (args) => callSources('cancelPull', args),
    refresh: (args) => callSources('refresh', args),
    open: (args) => callSources('open', args),
    setLevel: (args) => callSources('setLevel', args),
  }

  const listeners = new Set<(event: FileEvent) => void>()
  let source: EventSource | null = null
  let lostConnection = false

  function connect(): void {
    source = new EventSource(new URL('events', base))
    source.onmessage = (message: MessageEvent<string>) => {
      let event: FileEvent
      try {
        event = JSON.parse(message.data) as FileEvent
      } catch {
        return
      }
      for (const listener of listeners) listener(event)
    }
    source.onerror = () => {
      if (lostConnection || source?.readyState === EventSource.OPEN) return
      lostConnection = true
      const error: ApiError = {
        code: 'INTERNAL',
        message: `Lost the connection to the Routemeter server at ${base.origin}; retrying. What is shown may be out of date.`,
      }
      for (const listener of listeners) listener({ kind: 'error', error })
    }
    source.onopen = () => {
      // Events sent while the connection was down are lost: refresh once it is back.
      if (lostConnection) for (const listener of listeners) listener({ kind: 'changed' })
      lostConnection = false
    }
  }

  return {
    transport: 'web',
    sources,
    info: (args) => call('info', args),
    openFile: (args) => call('openFile', args),
    endpoints: (args) => call('endpoints', args),
    utilization: (args) => call('utilization', args),
    hourHeatmap: (args) => call('hourHeatmap', args),
    performance: (args) => call('performance', args),
    versionEvolution: (args) => call('versionEvolution', args),
    versionUtilization: (args) => call('versionUtilization', args),
    clients: (args) => call('clients', args),
    statusCodes: (args) => call('statusCodes', args),
    latestErrors: (args) => call('latestErrors', args),
    nodeBreakdown: (args) => call('nodeBreakdown', args),
    outliers: (args) => call('outliers', args),
    outlier: (args) => call('outlier', args),
    outlierTimeline: (args) => call('outlierTimeline', args),
    aboutFile: (args) => call('aboutFile', args),
    compare: (args) => call('compare', args),
    profile: (args) => call('profile', args),
    cpuProfile: (args) => call('cpuProfile', args),
    outlierCpuProfile: (args) => call('outlierCpuProfile', args),
    setLevel: (args) => call('setLevel', args),
    setRetention: (args) => call('setRetention', args),
    onFileEvent(listener) {
      listeners.add(listener)
      if (source === null) connect()
      return () => {
        listeners.delete(listener)
        if (listeners.size === 0) {
          source?.close()
          source = null
        }
      }
    },
    chooseFile: () => Promise.resolve(null),
  }
}
