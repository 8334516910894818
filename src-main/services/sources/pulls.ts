/*
 * Pulling servers' files: one download at a time, with its progress; a full
 * copy, or the requests newer than the copy applied to it.
 */
import { copyFileSync, rmSync } from 'node:fs'
import Database from 'better-sqlite3'
import type { PullProgress } from '../../api/contract.js'
import { badArgument, DashboardError, toApiError } from '../../api/errors.js'
import { getNativeBinding, MetricsConnection } from '../database.js'
import { applyDelta, lastRequestId, partPath, replaceFile } from './merge.js'
import { RemoteClient } from './remote.js'
import type { ServerList } from './server-list.js'

interface RunningPull {
  progress: PullProgress
  controller: AbortController
}

export function binding(): { nativeBinding?: string } {
  const path = getNativeBinding()
  return path === undefined ? {} : { nativeBinding: path }
}

export class Pulls {
  private running: RunningPull | null = null
  /** why the last download failed, until the next one starts */
  error: ReturnType<typeof toApiError> | null = null
  /** the last download that finished */
  last: PullProgress | null = null

  constructor(private readonly servers: ServerList) {}

  /** The download under way, if any. */
  progress(): PullProgress | null {
    return this.running === null ? null : { ...this.running.progress }
  }

  cancel(): void {
    this.running?.controller.abort()
  }

  /** Downloads a whole copy of a server's file. */
  full(id: string): Promise<void> {
    return this.download(id, false, (client, signal, progress) =>
      this.fullPull(client, signal, progress),
    )
  }

  /** Runs one download at a time, with its progress in `progress()`. */
  private async download<T>(
    id: string,
    incremental: boolean,
    run: (client: RemoteClient, signal: AbortSignal, progress: PullProgress) => Promise<T>,
  ): Promise<T> {
    this.servers.requireRemote()
    if (this.running !== null) {
      throw badArgument(
        `a download from ${this.running.progress.url} is running: wait or cancel it`,
      )
    }
    const server = this.servers.get(id)
    if (server.token === '') {
      throw new DashboardError(
        'WRONG_TOKEN',
        `The token of ${server.url} cannot be read on this machine: add the server again with its token.`,
      )
    }
    const client = new RemoteClient(server.url, server.token)
    const controller = new AbortController()
    const progress: PullProgress = {
      serverId: id,
      url: server.url,
      phase: 'connecting',
      receivedBytes: 0,
      totalBytes: null,
      incremental,
    }
    this.running = { progress, controller }
    this.error = null
    try {
      const result = await run(client, controller.signal, progress)
      this.last = { ...progress }
      return result
    } catch (error) {
      this.error = toApiError(error)
      throw error
    } finally {
      this.running = null
    }
  }

  private async fullPull(
    client: RemoteClient,
    signal: AbortSignal,
    progress: PullProgress,
  ): Promise<void> {
    progress.phase = 'connecting'
    progress.incremental = false
    await client.download(this.servers.copyPath(progress.serverId), {
      signal,
      onProgress: ({ receivedBytes, totalBytes }) => {
        // The first report comes with the response's headers.
        progress.phase = 'downloading'
        progress.receivedBytes = receivedBytes
        progress.totalBytes = totalBytes
        if (totalBytes !== null && receivedBytes >= totalBytes) progress.phase = 'checking'
      },
    })
  }

  /**
   * Brings a server's copy up to date with `?since=<its last request id>`,
   * applied to a copy of the copy that is renamed over it; any failure of
   * that path (an older server, a damaged delta) falls back to a full pull.
   */
  async refresh(id: string): Promise<void> {
    const copy = this.servers.copyPath(id)
    let since: number | null = null
    try {
      const db = new Database(copy, { readonly: true, fileMustExist: true, ...binding() })
      try {
        since = lastRequestId(db)
      } finally {
        db.close()
      }
    } catch {
      since = null
    }
    await this.download(id, since !== null, async (client, signal, progress) => {
      if (since === null) return this.fullPull(client, signal, progress)
      const delta = `${copy}.delta`
      const part = partPath(copy)
      try {
        const got = await client.download(delta, {
          since,
          signal,
          check: false,
          onProgress: ({ receivedBytes, totalBytes }) => {
            progress.phase = 'downloading'
            progress.receivedBytes = receivedBytes
            progress.totalBytes = totalBytes
          },
        })
        // The server's file was replaced (its ids start again): only a full copy is right.
        if (got.lastRequestId !== null && got.lastRequestId < since) {
          throw new Error('the server has fewer requests than the copy')
        }
        progress.phase = 'merging'
        copyFileSync(copy, part)
        applyDelta(part, delta, since)
        MetricsConnection.open(part, { quickCheck: false }).close()
        replaceFile(part, copy)
      } catch (error) {
        rmSync(part, { force: true })
        const code = toApiError(error).code
        if (code === 'CANCELLED' || code === 'WRONG_TOKEN' || code === 'UNREACHABLE') throw error
        progress.receivedBytes = 0
        progress.totalBytes = null
        await this.fullPull(client, signal, progress)
      } finally {
        rmSync(delta, { force: true })
      }
    })
  }
}
