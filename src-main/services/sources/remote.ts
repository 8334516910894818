/**
 * The client of a collector's remote API (`bind(app, { remote: { token } })`):
 * `GET {prefix}/info`, `GET {prefix}/snapshot[?since=<request id>]` (gzip of
 * an SQLite file) and `POST {prefix}/levels`. Every failure becomes a
 * DashboardError whose message says what went wrong in a person's words:
 * the server cannot be reached, the token is wrong, it is not a Routemeter
 * server, the download was cut short or cancelled.
 *
 * A download streams through gunzip into a temporary file next to the
 * destination; only a complete, checked file is renamed into place, so an
 * interrupted or cancelled download leaves nothing behind.
 */
import { createWriteStream, renameSync, rmSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { Readable, Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import type { MonitorLevel } from '../../api/contract.js'
import { DashboardError } from '../../api/errors.js'
import { MetricsConnection } from '../database.js'
import { useRollbackJournal } from './merge.js'

/** The collector's default prefix of its remote API. */
export const REMOTE_PREFIX = '/routemeter'

/** What `GET {prefix}/info` answers. */
export interface RemoteInfo {
  schemaVersion: number
  node: string
  appVersion: string | null
  fileBytes: number
  requests: number
  endpoints: number
  firstRequest: number | null
  lastRequest: number | null
  lastRequestId: number | null
}

export interface DownloadProgress {
  receivedBytes: number
  totalBytes: number | null
}

export interface DownloadOptions {
  /** only requests with a larger id (a delta for a refresh); absent: the whole file */
  since?: number
  signal?: AbortSignal
  onProgress?: (progress: DownloadProgress) => void
  /** check the result as the dashboard would open it; default true (false for a delta) */
  check?: boolean
}

export interface Download {
  path: string
  /** the server's headers about the snapshot */
  node: string | null
  schemaVersion: number | null
  lastRequestId: number | null
  compressedBytes: number
  uncompressedBytes: number
}

/**
 * The API's base URL from what a person typed: the app's URL, to which the
 * default prefix is added, or a URL that already ends with the prefix.
 */
export function remoteBase(url: string): URL {
  let parsed: URL
  try {
    parsed = new URL(url.trim())
  } catch {
    throw new DashboardError(
      'BAD_ARGUMENT',
      `"${url}" is not a URL: type the app's address, e.g. https://api.example.com`,
    )
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new DashboardError(
      'BAD_ARGUMENT',
      `"${url}" is not an http or https URL: type the app's address, e.g. https://api.example.com`,
    )
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new DashboardError('BAD_ARGUMENT', 'put the token in the token field, not in the URL')
  }
  parsed.search = ''
  parsed.hash = ''
  const path = parsed.pathname.replace(/\/+$/, '')
  parsed.pathname = path.endsWith(REMOTE_PREFIX) ? `${path}/` : `${path}${REMOTE_PREFIX}/`
  return parsed
}

/** Why fetch failed, from undici's error and its cause. */
function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause
  switch (cause?.code) {
    case 'ECONNREFUSED':
      return 'the connection was refused: is the app running on that port?'
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name is not known'
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'the connection timed out'
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'the server closed the connection'
    default:
      return cause?.message ?? (error as Error).message
  }
}

function isAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (error as Error | null)?.name === 'AbortError'
}

export class RemoteClient {
  readonly base: URL

  constructor(
    url: string,
    private readonly token: string,
  ) {
    this.base = remoteBase(url)
    if (token.trim() === '') {
      throw new DashboardError('BAD_ARGUMENT', "the token is empty: paste the server's token")
    }
  }

  /** The app's address as shown to a person. */
  get label(): string {
    return this.base.origin + this.base.pathname.replace(/\/routemeter\/$/, '')
  }

  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    const url = new URL(path, this.base)
    let response: Response
    try {
      response = await fetch(url, {
        ...init,
        redirect: 'error',
        headers: {
          ...(init.headers as Record<string, string>),
          authorization: `Bearer ${this.token}`,
        },
      })
    } catch (error) {
      if (isAbort(error, init.signal ?? undefined)) throw cancelled(this.label)
      throw new DashboardError(
        'UNREACHABLE',
        `Cannot reach ${this.label}: ${networkReason(error)}.`,
      )
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel()
      throw new DashboardError(
        'WRONG_TOKEN',
        `${this.label} refused the token (HTTP ${response.status}): wrong token. ` +
          'Use the token the app was started with (its remote option or ROUTEMETER_TOKEN).',
      )
    }
    return response
  }

  private notRoutemeter(status: number | string): DashboardError {
    return new DashboardError(
      'NOT_ROUTEMETER',
      `${this.label} is not a Routemeter server (${status} at ${this.base.pathname}): check the URL, ` +
        'and that the app binds Routemeter with the remote option (bind(app, { remote: { token } })).',
    )
  }

  /**
   * A refusal other than the token's: a server error (the collector says why
   * in `{ error }`: its file does not exist yet, cannot be read...) is not the
   * same as an address where no Routemeter answers.
   */
  private async failure(response: Response): Promise<DashboardError> {
    const body = (await response.json().catch(() => null)) as { error?: unknown } | null
    if (response.status >= 500 && typeof body?.error === 'string') {
      return new DashboardError(
        'DOWNLOAD_FAILED',
        `${this.label} could not send its metrics (HTTP ${response.status}: ${body.error}); ` +
          'nothing was saved. Try again.',
      )
    }
    return this.notRoutemeter(`HTTP ${response.status}`)
  }

  /** `GET {prefix}/info`: also how a new server's URL and token are checked. */
  async info(signal?: AbortSignal): Promise<RemoteInfo> {
    const response = await this.request('info', signal === undefined ? {} : { signal })
    if (!response.ok) throw await this.failure(response)
    let body: unknown
    try {
      body = await response.json()
    } catch (error) {
      if (isAbort(error, signal)) throw cancelled(this.label)
      throw this.notRoutemeter('an answer that is not JSON')
    }
    const info = body as Partial<RemoteInfo> | null
    if (
      info === null ||
      typeof info !== 'object' ||
      typeof info.schemaVersion !== 'number' ||
      typeof info.node !== 'string'
    ) {
      throw this.notRoutemeter('JSON without schemaVersion and node')
    }
    return info as RemoteInfo
  }

  /**
   * Downloads a snapshot into `dest`: streamed through gunzip into
   * `dest.<pid>.part`, checked, then renamed over `dest`. On any failure the
   * part file is removed and `dest` is untouched.
   */
  async download(dest: string, options: DownloadOptions = {}): Promise<Download> {
    const { signal } = options
    const query = options.since === undefined ? '' : `?since=${options.since}`
    const response = await this.request(`snapshot${query}`, signal === undefined ? {} : { signal })
    if (!response.ok || response.body === null) throw await this.failure(response)
    const type = response.headers.get('content-type') ?? ''
    if (!type.startsWith('application/gzip')) {
      await response.body.cancel()
      throw this.notRoutemeter(`a snapshot of type "${type || 'none'}" instead of application/gzip`)
    }
    const length = Number(response.headers.get('content-length'))
    const totalBytes = Number.isFinite(length) && length > 0 ? length : null
    const part = join(dirname(dest), `.${basename(dest)}.${process.pid}.part`)
    let receivedBytes = 0
    let uncompressedBytes = 0
    let lastReport = 0
    let lastReportAt = Date.now()
    const report = (): void => options.onProgress?.({ receivedBytes, totalBytes })
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback) {
        receivedBytes += chunk.length
        // Every 64 KiB or 100 ms at most: progress is for a bar, not for each packet.
        const now = Date.now()
        if (receivedBytes - lastReport >= 65_536 || now - lastReportAt >= 100) {
          lastReport = receivedBytes
          lastReportAt = now
          report()
        }
        callback(null, chunk)
      },
    })
    const gunzip = createGunzip()
    gunzip.on('data', (chunk: Buffer) => {
      uncompressedBytes += chunk.length
    })
    report()
    try {
      await pipeline(
        Readable.fromWeb(response.body as import('node:stream/web').ReadableStream),
        counter,
        gunzip,
        createWriteStream(part, { mode: 0o600 }),
        signal === undefined ? {} : { signal },
      )
      report()
      if (totalBytes !== null && receivedBytes !== totalBytes) {
        throw new DashboardError(
          'DOWNLOAD_FAILED',
          `The download from ${this.label} ended after ${receivedBytes} of ${totalBytes} bytes; ` +
            'nothing was saved. Try again.',
        )
      }
      const announced = Number(response.headers.get('x-routemeter-uncompressed-length'))
      if (Number.isFinite(announced) && announced > 0 && announced !== uncompressedBytes) {
        throw new DashboardError(
          'DOWNLOAD_FAILED',
          `The snapshot from ${this.label} unpacked to ${uncompressedBytes} bytes where the server ` +
            `announced ${announced}; nothing was saved. Try again.`,
        )
      }
      if (options.check ?? true) checkCopy(part, this.label)
      useRollbackJournal(part)
      renameSync(part, dest)
    } catch (error) {
      rmSync(part, { force: true })
      if (error instanceof DashboardError) throw error
      if (isAbort(error, signal)) throw cancelled(this.label)
      const what = (error as { code?: string }).code?.startsWith('Z_')
        ? 'the compressed data is damaged'
        : networkReason(error)
      throw new DashboardError(
        'DOWNLOAD_FAILED',
        `The download from ${this.label} was interrupted after ${receivedBytes}` +
          `${totalBytes === null ? '' : ` of ${totalBytes}`} bytes (${what}); nothing was saved.`,
      )
    }
    const header = (name: string): number | null => {
      const value = Number(response.headers.get(name) ?? Number.NaN)
      return Number.isFinite(value) ? value : null
    }
    return {
      path: dest,
      node: response.headers.get('x-routemeter-node'),
      schemaVersion: header('x-routemeter-schema'),
      lastRequestId: header('x-routemeter-last-request-id'),
      compressedBytes: receivedBytes,
      uncompressedBytes,
    }
  }

  /** `POST {prefix}/levels`: an endpoint is named by method and route, ids differ between files. */
  async setLevel(method: string, route: string, level: MonitorLevel): Promise<void> {
    const response = await this.request('levels', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ method, route, level }),
    })
    if (response.ok) {
      await response.body?.cancel()
      return
    }
    const body = (await response.json().catch(() => null)) as { error?: unknown } | null
    const why = typeof body?.error === 'string' ? body.error : `HTTP ${response.status}`
    if (response.status === 404 && typeof body?.error === 'string') {
      throw new DashboardError(
        'BAD_ARGUMENT',
        `${this.label} does not know the endpoint ${method} ${route} (${why}).`,
      )
    }
    if (response.status === 404) throw this.notRoutemeter('HTTP 404')
    throw new DashboardError('BAD_ARGUMENT', `${this.label} refused the level change: ${why}.`)
  }
}

function cancelled(label: string): DashboardError {
  return new DashboardError(
    'CANCELLED',
    `The download from ${label} was cancelled; nothing was saved.`,
  )
}

/** Opens a downloaded file as the dashboard would: a refusal names the server, not the temp file. */
function checkCopy(path: string, label: string): void {
  let connection: MetricsConnection
  try {
    connection = MetricsConnection.open(path, { quickCheck: true })
  } catch (error) {
    if (error instanceof DashboardError) {
      throw new DashboardError(
        error.code,
        `The copy pulled from ${label} cannot be opened: ${error.message.split(path).join('the file')}`,
      )
    }
    throw error
  }
  connection.close()
}
