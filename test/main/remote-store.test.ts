/**
 * The desktop's list of servers. Electron's safeStorage cannot run here, so
 * the store is driven through its cipher interface by a stand-in that
 * encrypts for real (AES-256-GCM with a key of its own), which is what
 * safeStorage does with the OS keychain's key.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { encryptedServerStore, type TokenCipher } from '../../src-main/shell/server-store.js'
import { tempDir, type TempDir } from '../fixtures/metrics-files.js'

function aesCipher(key = randomBytes(32), available = true): TokenCipher {
  return {
    isEncryptionAvailable: () => available,
    encryptString(plain) {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
      return Buffer.concat([iv, cipher.getAuthTag(), body])
    },
    decryptString(encrypted) {
      const decipher = createDecipheriv('aes-256-gcm', key, encrypted.subarray(0, 12))
      decipher.setAuthTag(encrypted.subarray(12, 28))
      return Buffer.concat([decipher.update(encrypted.subarray(28)), decipher.final()]).toString()
    },
  }
}

const SERVER = { url: 'https://api.example.com', token: 'secret-token-0123456789', node: 'web-1' }

let temp: TempDir
afterEach(() => temp?.cleanup())

describe('the desktop server store', () => {
  it('keeps servers across restarts with the token encrypted, never in clear', () => {
    temp = tempDir()
    const path = join(temp.dir, 'servers.json')
    const key = randomBytes(32)
    encryptedServerStore(path, aesCipher(key)).save([SERVER])
    expect(readFileSync(path, 'utf8')).not.toContain(SERVER.token)
    expect(encryptedServerStore(path, aesCipher(key)).load()).toEqual([SERVER])
  })

  it('lists a server whose token another key encrypted, without the token', () => {
    temp = tempDir()
    const path = join(temp.dir, 'servers.json')
    encryptedServerStore(path, aesCipher()).save([SERVER])
    expect(encryptedServerStore(path, aesCipher()).load()).toEqual([{ ...SERVER, token: '' }])
  })

  it('keeps a token for the session only where the OS offers no encryption', () => {
    temp = tempDir()
    const path = join(temp.dir, 'servers.json')
    const store = encryptedServerStore(path, aesCipher(undefined, false))
    store.save([SERVER])
    expect(readFileSync(path, 'utf8')).not.toContain(SERVER.token)
    expect(store.load()).toEqual([SERVER])
    expect(encryptedServerStore(path, aesCipher(undefined, false)).load()).toEqual([
      { ...SERVER, token: '' },
    ])
  })

  it('starts empty on a missing or damaged file', () => {
    temp = tempDir()
    const path = join(temp.dir, 'servers.json')
    expect(encryptedServerStore(path, aesCipher()).load()).toEqual([])
    writeFileSync(path, '{ not json')
    expect(encryptedServerStore(path, aesCipher()).load()).toEqual([])
  })
})
