/**
 * The narrow bridge between the sandboxed renderer and main: one named
 * function per API method (never ipcRenderer itself), exposed as
 * `window.routemeter` and typed as the contract's DashboardBridge.
 */
import { contextBridge, ipcRenderer, webUtils } from 'electron'
import type {
  ApiArgs,
  ApiMethod,
  ApiResult,
  DashboardBridge,
  FileEvent,
  FileInfo,
  MenuCommand,
  SourcesApi,
  SourcesArgs,
  SourcesMethod,
  SourcesResult,
} from '../api/contract.js'
import type { ApiResponse } from '../api/dispatch.js'
import { apiChannel, CHANNELS, sourcesChannel } from '../shell/channels.js'

/** Rejects with the ApiError itself (plain data crosses contextBridge intact). */
function unwrap<T>(response: ApiResponse<T>): T {
  if (response.ok) return response.value
  throw response.error
}

async function invoke<M extends ApiMethod>(method: M, args: ApiArgs<M>): Promise<ApiResult<M>> {
  return unwrap((await ipcRenderer.invoke(apiChannel(method), args)) as ApiResponse<ApiResult<M>>)
}

async function invokeSources<M extends SourcesMethod>(
  method: M,
  args: SourcesArgs<M>,
): Promise<SourcesResult<M>> {
  const response = (await ipcRenderer.invoke(sourcesChannel(method), args)) as ApiResponse<
    SourcesResult<M>
  >
  return unwrap(response)
}

const sources: SourcesApi = {
  state: (args) => invokeSources('state', args),
  addServer: (args) => invokeSources('addServer', args),
  removeServer: (args) => invokeSources('removeServer', args),
  pull: (args) => invokeSources('pull', args),
  cancelPull: (args) => invokeSources('cancelPull', args),
  refresh: (args) => invokeSources('refresh', args),
  open: (args) => invokeSources('open', args),
  setLevel: (args) => invokeSources('setLevel', args),
}

const bridge: DashboardBridge = {
  sources,
  chooseFiles: async () =>
    unwrap((await ipcRenderer.invoke(CHANNELS.chooseFiles)) as ApiResponse<string[]>),
  onMenuCommand(listener) {
    const handler = (_event: Electron.IpcRendererEvent, command: MenuCommand): void =>
      listener(command)
    ipcRenderer.on(CHANNELS.menuCommand, handler)
    return () => {
      ipcRenderer.removeListener(CHANNELS.menuCommand, handler)
    }
  },
  transport: 'desktop',
  info: (args) => invoke('info', args),
  openFile: (args) => invoke('openFile', args),
  endpoints: (args) => invoke('endpoints', args),
  utilization: (args) => invoke('utilization', args),
  hourHeatmap: (args) => invoke('hourHeatmap', args),
  performance: (args) => invoke('performance', args),
  versionEvolution: (args) => invoke('versionEvolution', args),
  versionUtilization: (args) => invoke('versionUtilization', args),
  clients: (args) => invoke('clients', args),
  statusCodes: (args) => invoke('statusCodes', args),
  latestErrors: (args) => invoke('latestErrors', args),
  nodeBreakdown: (args) => invoke('nodeBreakdown', args),
  outliers: (args) => invoke('outliers', args),
  outlier: (args) => invoke('outlier', args),
  outlierTimeline: (args) => invoke('outlierTimeline', args),
  aboutFile: (args) => invoke('aboutFile', args),
  compare: (args) => invoke('compare', args),
  profile: (args) => invoke('profile', args),
  cpuProfile: (args) => invoke('cpuProfile', args),
  outlierCpuProfile: (args) => invoke('outlierCpuProfile', args),
  setLevel: (args) => invoke('setLevel', args),
  setRetention: (args) => invoke('setRetention', args),
  onFileEvent(listener) {
    const handler = (_event: Electron.IpcRendererEvent, fileEvent: FileEvent): void =>
      listener(fileEvent)
    ipcRenderer.on(CHANNELS.fileEvent, handler)
    return () => {
      ipcRenderer.removeListener(CHANNELS.fileEvent, handler)
    }
  },
  chooseFile: async () =>
    unwrap((await ipcRenderer.invoke(CHANNELS.chooseFile)) as ApiResponse<FileInfo | null>),
}

contextBridge.exposeInMainWorld('routemeter', bridge)

// Open a file dropped on the window. The sandboxed page cannot see a dropped
// file's path; the preload can, through webUtils.
window.addEventListener('dragover', (event) => {
  event.preventDefault()
  if (event.dataTransfer !== null) event.dataTransfer.dropEffect = 'copy'
})
window.addEventListener('drop', (event) => {
  event.preventDefault()
  const file = event.dataTransfer?.files[0]
  if (file === undefined) return
  const path = webUtils.getPathForFile(file)
  if (path !== '') void ipcRenderer.invoke(CHANNELS.openDropped, path)
})
