/**
 * The dashboard API behind both transports (IPC and HTTP): holds the open
 * metrics file, answers the views' queries, writes monitor levels, and
 * tells subscribers when the file changes, is replaced or is deleted.
 *
 * A file deleted while open keeps answering with its last data (on POSIX the
 * open connection still reads the unlinked file), so the views do not go
 * blank; subscribers get `{ kind: 'deleted' }` to say so, and `setLevel`
 * fails with FILE_MISSING since there is nothing left to write to. When a
 * file appears again at the path it is opened and announced as `replaced`.
 */
import { resolve } from 'node:path'
import type {
  ApiArgs,
  ApiError,
  ApiMethod,
  DashboardApi,
  Endpoint,
  AboutFile,
  FileEvent,
  FileInfo,
} from '../api/contract.js'
import { DashboardError, isCorruption, toApiError } from '../api/errors.js'
import { API_METHODS } from '../api/validate.js'
import {
  MetricsConnection,
  writeMonitorLevel,
  writeRetentionPolicy,
  type OpenOptions,
} from './database.js'
import { MetricsQueries } from './queries.js'
import { watchMetricsFile, type FileWatcher, type WatchOptions } from './watcher.js'

export interface DashboardServiceOptions {
  /** the clock of "today" and "the last 7 days"; default Date.now */
  now?: () => number
  /** watch the open file for changes; default true */
  watch?: boolean | WatchOptions
  /** fewest ms between two `changed` events, so a busy collector does not make the UI redraw constantly; default 1000 */
  minChangedIntervalMs?: number
  /** run SQLite's quick_check on open; default true */
  quickCheck?: boolean
  /** largest file checked whole on open (larger ones: all but the request table); default 64 MiB */
  fullCheckMaxBytes?: number
}

export type FileEventListener = (event: FileEvent) => void

interface OpenFile {
  connection: MetricsConnection
  queries: MetricsQueries
  /** data_version when last compared */
  dataVersion: number
  deleted: boolean
  /** the last error reported for this path, not repeated until something else happens */
  reportedError: string | undefined
}

/** The API methods with logic of their own; every other one is a view of the open file's queries. */
const NOT_VIEWS = ['info', 'openFile', 'setLevel', 'setRetention'] as const
type ViewMethod = Exclude<ApiMethod, (typeof NOT_VIEWS)[number]>
const VIEW_METHODS = API_METHODS.filter(
  (method): method is ViewMethod => !(NOT_VIEWS as readonly string[]).includes(method),
)

// The view methods are added to the prototype from VIEW_METHODS (below): typed here.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type
export interface DashboardService extends Pick<DashboardApi, ViewMethod> {}

/**
 * The dashboard API. Arguments arrive validated: the transports check what
 * they receive once, where it enters (api/dispatch.ts).
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class DashboardService implements DashboardApi {
  private file: OpenFile | undefined
  private watcher: FileWatcher | undefined
  private readonly listeners = new Set<FileEventListener>()
  private readonly now: () => number
  private readonly watchOptions: WatchOptions | undefined
  private readonly minChangedIntervalMs: number
  private readonly openOptions: OpenOptions
  private lastChangedAt = Number.NEGATIVE_INFINITY
  private changedTimer: NodeJS.Timeout | undefined
  private closed = false
  /** why the last file asked for was refused while none was open; answered instead of NO_FILE */
  private refusal: DashboardError | undefined

  constructor(options: DashboardServiceOptions = {}) {
    this.now = options.now ?? Date.now
    const watch = options.watch ?? true
    this.watchOptions = watch === false ? undefined : watch === true ? {} : watch
    this.minChangedIntervalMs = options.minChangedIntervalMs ?? 1000
    this.openOptions = {
      quickCheck: options.quickCheck ?? true,
      ...(options.fullCheckMaxBytes === undefined
        ? {}
        : { fullCheckMaxBytes: options.fullCheckMaxBytes }),
    }
  }

  /** Path of the open file, if any. */
  get path(): string | undefined {
    return this.file?.connection.path
  }

  /** Calls `listener` with every file event; returns the unsubscribe function. */
  onFileEvent(listener: FileEventListener): () => void {
    this.listeners.add(listener)
    return () => {
      this.listeners.delete(listener)
    }
  }

  /** Tells subscribers of a problem found beside the file (a failed merge of a dataset's sources). */
  reportError(error: ApiError): void {
    this.emit({ kind: 'error', error })
  }

  private emit(event: FileEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event)
      } catch {
        // one broken subscriber must not keep the others from hearing about the file
      }
    }
  }

  private current(): OpenFile {
    if (this.closed) throw new DashboardError('INTERNAL', 'The dashboard service was stopped.')
    if (this.file === undefined) {
      throw (
        this.refusal ??
        new DashboardError('NO_FILE', 'No metrics file is open: open a Routemeter .db file.')
      )
    }
    return this.file
  }

  /** Runs a query on the open file, turning SQLite's errors into the API's. */
  runQuery<T>(run: (queries: MetricsQueries) => T): Promise<T> {
    try {
      return Promise.resolve(run(this.current().queries))
    } catch (error) {
      return Promise.reject(asDashboardError(error, this.file?.connection.path))
    }
  }

  async openFile(args: ApiArgs<'openFile'>): Promise<FileInfo> {
    const { path } = args
    if (this.closed) throw new DashboardError('INTERNAL', 'The dashboard service was stopped.')
    // Opening first: when the new file is refused, the open one stays.
    let connection: MetricsConnection
    try {
      connection = MetricsConnection.open(resolve(path), this.openOptions)
    } catch (error) {
      if (this.file === undefined) {
        this.refusal = error instanceof DashboardError ? error : asDashboardError(error)
      }
      throw error
    }
    this.refusal = undefined
    const previous = this.file
    this.file = this.wrap(connection)
    previous?.connection.close()
    await this.restartWatcher(previous?.connection.path)
    const info = this.file.queries.info()
    this.emit({ kind: 'opened', info })
    return info
  }

  private wrap(connection: MetricsConnection): OpenFile {
    return {
      connection,
      queries: new MetricsQueries(connection, this.now),
      dataVersion: connection.dataVersion(),
      deleted: false,
      reportedError: undefined,
    }
  }

  private async restartWatcher(previousPath: string | undefined): Promise<void> {
    const file = this.file
    if (this.watchOptions === undefined || file === undefined) return
    if (this.watcher !== undefined && previousPath === file.connection.path) return
    await this.watcher?.close()
    this.watcher = watchMetricsFile(file.connection.path, () => this.check(), this.watchOptions)
  }

  /**
   * Compares the file on disk with the open connection and tells
   * subscribers what happened. The watcher calls it; tests may too.
   */
  check(): void {
    const file = this.file
    if (file === undefined || this.closed) return
    try {
      const state = file.connection.fileState()
      if (state === 'missing') {
        if (!file.deleted) {
          file.deleted = true
          this.emit({ kind: 'deleted' })
        }
        return
      }
      // A file at the path again after a deletion is another file, even with the same inode.
      if (state === 'replaced' || file.deleted) {
        this.reopen(file)
        return
      }
      const dataVersion = file.connection.dataVersion()
      if (dataVersion !== file.dataVersion) {
        file.dataVersion = dataVersion
        file.reportedError = undefined
        this.changed()
      }
    } catch (error) {
      this.reportOnce(file, toApiError(asDashboardError(error)))
    }
  }

  private reopen(file: OpenFile): void {
    let connection: MetricsConnection
    try {
      connection = MetricsConnection.open(file.connection.path, this.openOptions)
    } catch (error) {
      // Often a copy still being written: keep the last data and try again at the next check.
      this.reportOnce(file, toApiError(error))
      return
    }
    file.connection.close()
    this.file = this.wrap(connection)
    this.emit({ kind: 'replaced' })
  }

  private reportOnce(file: OpenFile, error: ApiError): void {
    const key = `${error.code}:${error.message}`
    if (file.reportedError === key) return
    file.reportedError = key
    this.emit({ kind: 'error', error })
  }

  /** Emits `changed`, at most once per minChangedIntervalMs (later ones are merged). */
  private changed(): void {
    if (this.changedTimer !== undefined) return
    const wait = this.lastChangedAt + this.minChangedIntervalMs - Date.now()
    const send = (): void => {
      this.changedTimer = undefined
      if (this.closed) return
      this.lastChangedAt = Date.now()
      this.emit({ kind: 'changed' })
    }
    if (wait <= 0) send()
    else this.changedTimer = setTimeout(send, wait)
  }

  info(_args: ApiArgs<'info'>): Promise<FileInfo> {
    return this.runQuery((q) => q.info())
  }

  async setLevel(args: ApiArgs<'setLevel'>): Promise<Endpoint> {
    const { endpointId, level } = args
    const file = this.current()
    if (file.deleted || file.connection.fileState() === 'missing') {
      throw new DashboardError(
        'FILE_MISSING',
        `The metrics file ${file.connection.path} was deleted: the level cannot be saved.`,
      )
    }
    const endpoint = writeMonitorLevel(file.connection.path, endpointId, level)
    // Tell subscribers now rather than at the next poll.
    this.check()
    return endpoint
  }

  async setRetention(args: ApiArgs<'setRetention'>): Promise<AboutFile> {
    const file = this.current()
    if (file.deleted || file.connection.fileState() === 'missing') {
      throw new DashboardError(
        'FILE_MISSING',
        `The metrics file ${file.connection.path} was deleted: the retention policy cannot be saved.`,
      )
    }
    writeRetentionPolicy(file.connection.path, args, Date.now())
    this.check()
    return this.runQuery((q) => q.aboutFile())
  }

  /** Stops watching and closes the file; the service answers nothing afterwards. */
  async close(): Promise<void> {
    this.closed = true
    if (this.changedTimer !== undefined) clearTimeout(this.changedTimer)
    this.listeners.clear()
    await this.watcher?.close()
    this.watcher = undefined
    this.file?.connection.close()
    this.file = undefined
  }
}

/** An error as the API's; damage is said with the file's name (`path`) when it is known. */
function asDashboardError(error: unknown, path?: string): DashboardError {
  if (error instanceof DashboardError) return error
  if (path !== undefined && isCorruption(error)) {
    return new DashboardError(
      'CORRUPT',
      `The metrics file ${path} is damaged (${(error as Error).message}): this view reads ` +
        'requests from damaged pages. Views of whole hours and days read the rollups and may still work.',
    )
  }
  const { code, message } = toApiError(error)
  return new DashboardError(code, message)
}

for (const method of VIEW_METHODS) {
  Object.defineProperty(DashboardService.prototype, method, {
    value(this: DashboardService, args: unknown) {
      return this.runQuery((queries) =>
        (queries[method] as (args: unknown) => unknown).call(queries, args),
      )
    },
    writable: true,
    configurable: true,
  })
}
