/**
 * The desktop's IPC handlers, without Electron: the API as the desktop answers
 * it, and the sources' handlers. main (index.ts) registers one `ipcMain.handle`
 * per method, through callApi; tests call them directly.
 */
import type {
  ApiError,
  ApiMethod,
  DashboardApi,
  FileInfo,
  SourcesApi,
  SourcesMethod,
  SourcesResult,
} from '../api/contract.js'
import type { ApiResponse } from '../api/dispatch.js'
import { toApiError } from '../api/errors.js'
import { API_METHODS, SOURCES_METHODS, validateSourcesArgs } from '../api/validate.js'

export interface ShellHooks {
  /** Opens a file the way the desktop does (recent files, window title). */
  openFile(path: string): Promise<FileInfo>
  /** Why the file asked for at startup could not be opened; shown until a file opens. */
  startupError(): ApiError | null
}

/**
 * The API as the desktop answers it: the service, except that opening a file
 * goes through the shell and "no file" says why the startup file was refused.
 * Its arguments are validated by callApi (api/dispatch.ts), where IPC enters.
 */
export function desktopApi(service: DashboardApi, shell: ShellHooks): DashboardApi {
  const api = {} as Record<ApiMethod, (args: unknown) => Promise<unknown>>
  for (const method of API_METHODS) {
    const call = service[method] as (args: unknown) => Promise<unknown>
    api[method] = (args) => call.call(service, args)
  }
  api.info = async (args) => {
    try {
      return await service.info(args as Record<string, never>)
    } catch (error) {
      // No file open because the one asked for was refused: say why, not just "no file".
      const startup = shell.startupError()
      if (startup !== null && toApiError(error).code === 'NO_FILE') throw startup
      throw error
    }
  }
  api.openFile = (args) => shell.openFile((args as { path: string }).path)
  return api as unknown as DashboardApi
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
