/**
 * IPC channel names, shared by main and the preload. No imports: the
 * sandboxed preload bundles this file and nothing of main's.
 */
import type { ApiMethod, SourcesMethod } from '../api/contract.js'

/** IPC channel of an API method. */
export function apiChannel(method: ApiMethod): `api:${ApiMethod}` {
  return `api:${method}`
}

/** IPC channel of a sources method. */
export function sourcesChannel(method: SourcesMethod): `sources:${SourcesMethod}` {
  return `sources:${method}`
}

/** Channels besides the API's. */
export const CHANNELS = {
  /** main → renderer: a FileEvent */
  fileEvent: 'file-event',
  /** renderer → main: show the open dialog; answers ApiResponse<FileInfo | null> */
  chooseFile: 'shell:choose-file',
  /** renderer → main: a file was dropped on the window; errors come back as a FileEvent */
  openDropped: 'shell:open-dropped',
  /** renderer → main: pick several files; answers ApiResponse<string[]> */
  chooseFiles: 'shell:choose-files',
  /** main → renderer: a MenuCommand (Open from Server…, Refresh from Server) */
  menuCommand: 'shell:menu-command',
} as const
