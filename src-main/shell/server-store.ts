/**
 * The desktop's list of servers: a JSON file in the profile folder, each
 * token encrypted with Electron's safeStorage (the OS keychain's key). The
 * cipher is passed in, so this file does not import Electron and runs
 * under Node in tests. Where the OS offers no encryption (a Linux session
 * without a keyring) tokens are kept for the session only, never in clear.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { ServerStore, StoredServer } from '../services/sources/servers.js'

/** The part of Electron's safeStorage this store uses. */
export interface TokenCipher {
  isEncryptionAvailable(): boolean
  encryptString(plain: string): Buffer
  decryptString(encrypted: Buffer): string
}

interface SavedServer {
  url: string
  node: string | null
  /** base64 of safeStorage's ciphertext; absent when it could not be encrypted */
  token?: string
}

export function encryptedServerStore(path: string, cipher: TokenCipher): ServerStore {
  /** tokens that could not be encrypted: this session only */
  const sessionTokens = new Map<string, string>()
  return {
    load() {
      let saved: SavedServer[]
      try {
        saved = JSON.parse(readFileSync(path, 'utf8')) as SavedServer[]
        if (!Array.isArray(saved)) return []
      } catch {
        return []
      }
      const servers: StoredServer[] = []
      for (const entry of saved) {
        if (typeof entry?.url !== 'string') continue
        let token = sessionTokens.get(entry.url)
        if (token === undefined && typeof entry.token === 'string') {
          try {
            token = cipher.decryptString(Buffer.from(entry.token, 'base64'))
          } catch {
            // another machine's or user's key: the server stays listed, its token is asked again
          }
        }
        servers.push({ url: entry.url, node: entry.node ?? null, token: token ?? '' })
      }
      return servers
    },
    save(servers) {
      const encrypt = cipher.isEncryptionAvailable()
      const saved: SavedServer[] = servers.map((server) => {
        if (!encrypt) sessionTokens.set(server.url, server.token)
        return {
          url: server.url,
          node: server.node,
          ...(encrypt ? { token: cipher.encryptString(server.token).toString('base64') } : {}),
        }
      })
      mkdirSync(dirname(path), { recursive: true })
      const part = `${path}.part`
      writeFileSync(part, JSON.stringify(saved, null, 2), { mode: 0o600 })
      renameSync(part, path)
    },
  }
}
