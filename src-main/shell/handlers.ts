/**
 * The desktop's IPC handlers, without Electron: one handler per API method,
 * each validating its argument before the service sees it. main (index.ts)
 * registers one `ipcMain.handle` per entry; tests call them directly.
 */
import type {
  ApiError,
  ApiMethod,
  ApiResult,
  DashboardApi,
  FileInfo,
  SourcesApi,
  SourcesMethod,
  SourcesResult,
} from '../api/contract.js'
import type { ApiResponse } from '../api/dispatch.js'
import { toApiError } from '../api/errors.js'
import { SOURCES_METHODS, validateArgs, validateSourcesArgs } from '../api/validate.js'

/** A renamed or missing method in the contract fails the build here. */
export type IpcHandlers = { readonly [M in ApiMethod]: (args: unknown) => Promise<ApiResult<M>> }

export interface ShellHooks {
  /** Opens a file the way the desktop does (recent files, window title). */
  openFile(path: string): Promise<FileInfo>
  /** Why the file asked for at startup could not be opened; shown until a file opens. */
  startupError(): ApiError | null
}

export function createIpcHandlers(service: DashboardApi, shell: ShellHooks): IpcHandlers {
  return {
    info: async (args) => {
      validateArgs('info', args)
      try {
        return await service.info({})
      } catch (error) {
        // No file open because the one asked for was refused: say why, not just "no file".
        const startup = shell.startupError()
        if (startup !== null && toApiError(error).code === 'NO_FILE') throw startup
        throw error
      }
    },
    openFile: (args) => shell.openFile(validateArgs('openFile', args).path),
    endpoints: (args) => service.endpoints(validateArgs('endpoints', args)),
    utilization: (args) => service.utilization(validateArgs('utilization', args)),
    hourHeatmap: (args) => service.hourHeatmap(validateArgs('hourHeatmap', args)),
    performance: (args) => service.performance(validateArgs('performance', args)),
    versionEvolution: (args) => service.versionEvolution(validateArgs('versionEvolution', args)),
    versionUtilization: (args) =>
      service.versionUtilization(validateArgs('versionUtilization', args)),
    clients: (args) => service.clients(validateArgs('clients', args)),
    statusCodes: (args) => service.statusCodes(validateArgs('statusCodes', args)),
    latestErrors: (args) => service.latestErrors(validateArgs('latestErrors', args)),
    nodeBreakdown: (args) => service.nodeBreakdown(validateArgs('nodeBreakdown', args)),
    setLevel: (args) => service.setLevel(validateArgs('setLevel', args)),
  } satisfies IpcHandlers
}

export type SourcesHandlers = {
  readonly [M in SourcesMethod]: (args: unknown) => Promise<SourcesResult<M>>
}

/** One handler per sources method (channel `sources:<method>`), each validating its argument. */
export function createSourcesHandlers(sources: SourcesApi): SourcesHandlers {
  const handlers: Partial<Record<SourcesMethod, (args: unknown) => Promise<unknown>>> = {}
  for (const method of SOURCES_METHODS) {
    const call = sources[method] as (args: unknown) => Promise<unknown>
    handlers[method] = (args) => call.call(sources, validateSourcesArgs(method, args))
  }
  return handlers as SourcesHandlers
}

/** IPC keeps only the message of a thrown error: answers travel as data instead. */
export async function respond<T>(run: () => Promise<T>): Promise<ApiResponse<T>> {
  try {
    return { ok: true, value: await run() }
  } catch (error) {
    return { ok: false, error: toApiError(error) }
  }
}

export { apiChannel, CHANNELS, sourcesChannel } from './channels.js'
