/**
 * The servers a person added, with their tokens. Where they are kept is the
 * caller's choice: the desktop keeps them in its profile folder with the
 * tokens encrypted by Electron's safeStorage (src-main/shell/server-store.ts);
 * web mode keeps them in memory only, so a token never lands on the disk of
 * a machine the browser's user may not own.
 */
import { createHash } from 'node:crypto'
import { remoteBase } from './remote.js'

export interface StoredServer {
  url: string
  token: string
  /** node name from the server's last /info; null before */
  node: string | null
}

export interface ServerStore {
  load(): StoredServer[]
  save(servers: readonly StoredServer[]): void
}

/** Web mode's store: nothing survives the process. */
export function memoryServerStore(): ServerStore {
  let servers: StoredServer[] = []
  return {
    load: () => servers.map((server) => ({ ...server })),
    save: (list) => {
      servers = list.map((server) => ({ ...server }))
    },
  }
}

/** A server's id: the same URL (as the API sees it) is the same server. */
export function serverId(url: string): string {
  return createHash('sha256').update(remoteBase(url).href).digest('hex').slice(0, 16)
}
