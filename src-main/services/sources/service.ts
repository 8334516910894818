/**
 * Where the dataset on screen comes from: a local file, a copy pulled from
 * a server, or several of those merged into one file. The dashboard service
 * always shows one SQLite file; this service makes that file (in `dataDir`)
 * and keeps it up to date, and sends monitoring-level changes back to every
 * source: files are written as the dashboard writes them, servers get
 * `POST /routemeter/levels`.
 *
 *   dataDir/<server id>.db   a server's pulled copy (refreshed with deltas)
 *   dataDir/merged.db        several sources as one
 */
import { copyFileSync, mkdirSync, rmSync, statSync } from 'node:fs'
import { basename, join, resolve, sep } from 'node:path'
import Database from 'better-sqlite3'
import type { EndpointRow } from 'routemeter/schema'
import type {
  DatasetSource,
  Endpoint,
  FileInfo,
  LevelChange,
  ServerEntry,
  SourceLevelResult,
  SourceRef,
  SourcesApi,
  SourcesArgs,
  SourcesState,
  PullProgress,
} from '../../api/contract.js'
import { badArgument, DashboardError, toApiError } from '../../api/errors.js'
import { validateSourcesArgs } from '../../api/validate.js'
import type { DashboardService } from '../dashboard.js'
import { MetricsConnection, getNativeBinding, toEndpoint, writeMonitorLevel } from '../database.js'
import { watchMetricsFile, type FileWatcher, type WatchOptions } from '../watcher.js'
import {
  applyDelta,
  lastRequestId,
  MAX_MERGED_SOURCES,
  mergeIncrement,
  mergeSources,
  openWritable,
  partPath,
  replaceFile,
  type MergeMark,
  type MergeSource,
} from './merge.js'
import { RemoteClient } from './remote.js'
import { memoryServerStore, serverId, type ServerStore, type StoredServer } from './servers.js'

export interface SourcesServiceOptions {
  /** the dashboard that shows the dataset's file */
  files: DashboardService
  /** where pulled copies and merged files live */
  dataDir: string
  /** default: memory only */
  store?: ServerStore
  /** may this app contact servers; default true (web mode: only with --allow-remote) */
  remoteAllowed?: boolean
  /** may the UI name local files to merge; default true (web mode: only with --allow-open) */
  openAllowed?: boolean
  /** watch the local files of a merged dataset and merge again when they change; default true */
  watch?: boolean | WatchOptions
}

interface Dataset {
  refs: SourceRef[]
  /** the file the dashboard shows */
  output: string
  /** merged datasets: how far each source was merged */
  marks: MergeMark[] | null
  watchers: FileWatcher[]
  /** stat signature of each watched file at the last merge */
  signatures: Map<string, string>
}

interface RunningPull {
  progress: PullProgress
  controller: AbortController
}

const MERGED_NAME = 'merged.db'

export class SourcesService implements SourcesApi {
  private readonly files: DashboardService
  private readonly dataDir: string
  private readonly store: ServerStore
  private readonly remoteAllowed: boolean
  private readonly openAllowed: boolean
  private readonly watchOptions: WatchOptions | undefined
  private servers: StoredServer[]
  private running: RunningPull | null = null
  private pullError: ReturnType<typeof toApiError> | null = null
  private lastPull: PullProgress | null = null
  private dataset: Dataset | null = null
  /** one merge at a time: a change seen while merging merges again afterwards */
  private merging: Promise<void> = Promise.resolve()

  constructor(options: SourcesServiceOptions) {
    this.files = options.files
    this.dataDir = resolve(options.dataDir)
    this.store = options.store ?? memoryServerStore()
    this.remoteAllowed = options.remoteAllowed ?? true
    this.openAllowed = options.openAllowed ?? true
    const watch = options.watch ?? true
    this.watchOptions = watch === false ? undefined : watch === true ? {} : watch
    // Pulled copies are other servers' metrics: readable by this user only.
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 })
    this.servers = this.store.load()
  }

  // ---- servers -----------------------------------------------------------------------------

  private entry(server: StoredServer): ServerEntry {
    const id = serverId(server.url)
    let pulledAt: number | null = null
    let copyBytes: number | null = null
    try {
      const stats = statSync(this.copyPath(id))
      pulledAt = stats.mtimeMs
      copyBytes = stats.size
    } catch {
      // not pulled yet
    }
    return { id, url: server.url, node: server.node, pulledAt, copyBytes }
  }

  /** `<host>-<id>.db`: the name says which server, the id which of its URLs. */
  private copyPath(id: string): string {
    const server = this.servers.find((candidate) => serverId(candidate.url) === id)
    const host =
      server === undefined ? 'server' : new URL(server.url).host.replace(/[^\w.-]+/g, '_')
    return join(this.dataDir, `${host}-${id.slice(0, 8)}.db`)
  }

  private server(id: string): StoredServer {
    const server = this.servers.find((candidate) => serverId(candidate.url) === id)
    if (server === undefined) throw badArgument(`no server with id ${id} was added`)
    return server
  }

  private requireRemote(): void {
    if (!this.remoteAllowed) {
      throw new DashboardError(
        'READ_ONLY',
        'This web server does not contact other servers; start it with --allow-remote to pull from servers.',
      )
    }
  }

  async state(args: SourcesArgs<'state'>): Promise<SourcesState> {
    validateSourcesArgs('state', args)
    return {
      remoteAllowed: this.remoteAllowed,
      openAllowed: this.openAllowed,
      servers: this.servers.map((server) => this.entry(server)),
      pull: this.running === null ? null : { ...this.running.progress },
      pullError: this.pullError,
      lastPull: this.lastPull,
      dataset: this.datasetSources(),
    }
  }

  async addServer(args: SourcesArgs<'addServer'>): Promise<ServerEntry> {
    const { url, token } = validateSourcesArgs('addServer', args)
    this.requireRemote()
    const client = new RemoteClient(url, token)
    const info = await client.info(AbortSignal.timeout(15_000))
    const id = serverId(url)
    const server: StoredServer = { url: client.label, token, node: info.node }
    this.servers = [...this.servers.filter((other) => serverId(other.url) !== id), server]
    this.store.save(this.servers)
    return this.entry(server)
  }

  async removeServer(args: SourcesArgs<'removeServer'>): Promise<SourcesState> {
    const { serverId: id } = validateSourcesArgs('removeServer', args)
    this.server(id)
    if (this.dataset?.refs.some((ref) => ref.kind === 'server' && ref.serverId === id)) {
      throw badArgument('this server is part of the dataset on screen: open something else first')
    }
    rmSync(this.copyPath(id), { force: true })
    this.servers = this.servers.filter((server) => serverId(server.url) !== id)
    this.store.save(this.servers)
    return this.state({})
  }

  // ---- pulling -----------------------------------------------------------------------------

  /** Runs one download at a time, with its progress in `state().pull`. */
  private async download<T>(
    id: string,
    incremental: boolean,
    run: (client: RemoteClient, signal: AbortSignal, progress: PullProgress) => Promise<T>,
  ): Promise<T> {
    this.requireRemote()
    if (this.running !== null) {
      throw badArgument(
        `a download from ${this.running.progress.url} is running: wait or cancel it`,
      )
    }
    const server = this.server(id)
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
    this.pullError = null
    try {
      const result = await run(client, controller.signal, progress)
      this.lastPull = { ...progress }
      return result
    } catch (error) {
      this.pullError = toApiError(error)
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
    await client.download(this.copyPath(progress.serverId), {
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
  private async refreshCopy(id: string): Promise<void> {
    const copy = this.copyPath(id)
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

  async pull(args: SourcesArgs<'pull'>): Promise<FileInfo> {
    const { serverId: id } = validateSourcesArgs('pull', args)
    await this.download(id, false, (client, signal, progress) =>
      this.fullPull(client, signal, progress),
    )
    return this.show([{ kind: 'server', serverId: id }])
  }

  async cancelPull(args: SourcesArgs<'cancelPull'>): Promise<SourcesState> {
    validateSourcesArgs('cancelPull', args)
    this.running?.controller.abort()
    return this.state({})
  }

  async refresh(args: SourcesArgs<'refresh'>): Promise<FileInfo> {
    validateSourcesArgs('refresh', args)
    const dataset = this.current()
    if (dataset === null)
      throw badArgument('the open file did not come from a server: there is nothing to refresh')
    for (const ref of dataset.refs) if (ref.kind === 'server') await this.refreshCopy(ref.serverId)
    if (dataset.marks !== null) await this.remerge(dataset)
    // Without a watcher the dashboard would not look at the file again by itself.
    this.files.check()
    return this.files.info({})
  }

  // ---- datasets ----------------------------------------------------------------------------

  /** The dataset this service made, if the dashboard still shows it. */
  private current(): Dataset | null {
    const dataset = this.dataset
    if (dataset === null || this.files.path !== dataset.output) return null
    return dataset
  }

  private datasetSources(): DatasetSource[] | null {
    const dataset = this.current()
    if (dataset !== null) return dataset.refs.map((ref) => this.describe(ref))
    const path = this.files.path
    return path === undefined ? null : [{ kind: 'file', label: path, serverId: null }]
  }

  private describe(ref: SourceRef): DatasetSource {
    if (ref.kind === 'file') return { kind: 'file', label: ref.path, serverId: null }
    const server = this.servers.find((candidate) => serverId(candidate.url) === ref.serverId)
    return { kind: 'server', label: server?.url ?? ref.serverId, serverId: ref.serverId }
  }

  async open(args: SourcesArgs<'open'>): Promise<FileInfo> {
    const { sources } = validateSourcesArgs('open', args)
    if (sources.length > MAX_MERGED_SOURCES) {
      throw badArgument(`at most ${MAX_MERGED_SOURCES} files or servers can be opened as one`)
    }
    for (const ref of sources) {
      if (ref.kind === 'file' && !this.openAllowed) {
        throw new DashboardError(
          'READ_ONLY',
          'This server shows one file; start it with --allow-open to open others from the browser.',
        )
      }
      if (ref.kind === 'server') {
        this.server(ref.serverId)
        // A server never pulled is pulled now, once.
        try {
          statSync(this.copyPath(ref.serverId))
        } catch {
          await this.download(ref.serverId, false, (client, signal, progress) =>
            this.fullPull(client, signal, progress),
          )
        }
      }
    }
    return this.show(sources)
  }

  /** Makes the dashboard show `refs`: one file as it is, several merged. */
  private async show(refs: SourceRef[]): Promise<FileInfo> {
    const unique = dedupe(refs)
    await this.stopWatching()
    if (unique.length === 1) {
      const only = unique[0]!
      const output = only.kind === 'file' ? resolve(only.path) : this.copyPath(only.serverId)
      const info = await this.files.openFile({ path: output })
      this.dataset = only.kind === 'file' ? null : this.newDataset(unique, output, null)
      return info
    }
    const output = join(this.dataDir, MERGED_NAME)
    const sources = this.mergeInputs(unique)
    for (const source of sources) MetricsConnection.open(source.path, { quickCheck: false }).close()
    const marks = mergeSources(output, sources)
    const dataset = this.newDataset(unique, output, marks)
    this.dataset = dataset
    const info = await this.files.openFile({ path: output })
    this.watchSources(dataset)
    return info
  }

  private newDataset(refs: SourceRef[], output: string, marks: MergeMark[] | null): Dataset {
    return { refs, output, marks, watchers: [], signatures: new Map() }
  }

  /** Paths and node labels of the sources, labels made unique. */
  private mergeInputs(refs: readonly SourceRef[]): MergeSource[] {
    const used = new Set<string>()
    return refs.map((ref) => {
      let label: string
      let path: string
      if (ref.kind === 'file') {
        path = resolve(ref.path)
        label = basename(path).replace(/\.(db|sqlite3?)$/i, '')
        if (used.has(label)) label = path.split(sep).slice(-2).join('/')
      } else {
        path = this.copyPath(ref.serverId)
        const server = this.server(ref.serverId)
        label = new URL(server.url).host
      }
      for (let n = 2; used.has(label); n++) label = `${label.replace(/ #\d+$/, '')} #${n}`
      used.add(label)
      return { path, label }
    })
  }

  private signature(path: string): string {
    const parts = ['', '-wal'].map((suffix) => {
      try {
        const stats = statSync(path + suffix)
        return `${stats.ino}:${stats.size}:${stats.mtimeMs}`
      } catch {
        return '-'
      }
    })
    return parts.join('|')
  }

  /** Local files of a merged dataset are watched: a collector writing them makes a new merge. */
  private watchSources(dataset: Dataset): void {
    if (this.watchOptions === undefined) return
    for (const ref of dataset.refs) {
      if (ref.kind !== 'file') continue
      const path = resolve(ref.path)
      dataset.signatures.set(path, this.signature(path))
      dataset.watchers.push(
        watchMetricsFile(
          path,
          () => {
            if (this.current() !== dataset) return
            const now = this.signature(path)
            if (now === dataset.signatures.get(path)) return
            dataset.signatures.set(path, now)
            // A failed merge keeps the last one on screen, says why, and the next change tries again.
            void this.remerge(dataset).catch((error: unknown) => {
              const { code, message } = toApiError(error)
              this.files.reportError({
                code,
                message: `${path} changed but could not be merged again: ${message}`,
              })
            })
          },
          this.watchOptions,
        ),
      )
    }
  }

  /** Merges again what is new; a full merge when a source was replaced by another file. */
  private remerge(dataset: Dataset): Promise<void> {
    const next = this.merging.then(() => {
      if (this.current() !== dataset || dataset.marks === null) return
      const sources = this.mergeInputs(dataset.refs)
      const marks = mergeIncrement(dataset.output, sources, dataset.marks)
      dataset.marks = marks ?? mergeSources(dataset.output, sources)
      this.files.check()
    })
    this.merging = next.catch(() => undefined)
    return next
  }

  /** Call to merge again now (tests; the watcher does it otherwise). */
  remergeNow(): Promise<void> {
    const dataset = this.current()
    return dataset === null ? Promise.resolve() : this.remerge(dataset)
  }

  private async stopWatching(): Promise<void> {
    const watchers = this.dataset?.watchers ?? []
    if (this.dataset !== null) this.dataset.watchers = []
    await Promise.all(watchers.map((watcher) => watcher.close()))
  }

  // ---- levels ------------------------------------------------------------------------------

  async setLevel(args: SourcesArgs<'setLevel'>): Promise<LevelChange> {
    const { endpointId, level } = validateSourcesArgs('setLevel', args)
    const dataset = this.current()
    const path = this.files.path
    if (dataset === null) {
      const endpoint = await this.files.setLevel({ endpointId, level })
      const source: DatasetSource = { kind: 'file', label: path ?? '', serverId: null }
      return { endpoint, sources: [{ source, accepted: true, message: null }] }
    }
    const named = readEndpoint(dataset.output, endpointId)
    const results: SourceLevelResult[] = []
    for (const ref of dataset.refs) {
      const source = this.describe(ref)
      try {
        if (ref.kind === 'server') {
          const server = this.server(ref.serverId)
          this.requireRemote()
          await new RemoteClient(server.url, server.token).setLevel(
            named.method,
            named.route,
            level,
          )
          const copy = this.copyPath(ref.serverId)
          // The copy on screen says what the server now does, without a new pull.
          if (copy !== dataset.output) setLevelByName(copy, named.method, named.route, level)
        } else {
          setLevelByName(resolve(ref.path), named.method, named.route, level)
        }
        results.push({ source, accepted: true, message: null })
      } catch (error) {
        results.push({ source, accepted: false, message: toApiError(error).message })
      }
    }
    const endpoint = results.some((result) => result.accepted)
      ? writeMonitorLevel(dataset.output, endpointId, level)
      : named
    this.files.check()
    return { endpoint, sources: results }
  }

  async close(): Promise<void> {
    this.running?.controller.abort()
    await this.stopWatching()
    this.dataset = null
  }
}

function binding(): { nativeBinding?: string } {
  const path = getNativeBinding()
  return path === undefined ? {} : { nativeBinding: path }
}

function dedupe(refs: readonly SourceRef[]): SourceRef[] {
  const seen = new Set<string>()
  return refs.filter((ref) => {
    const key = ref.kind === 'file' ? `file:${resolve(ref.path)}` : `server:${ref.serverId}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/** An endpoint of one of our files (a copy or a merged dataset), as the API shows it. */
function readEndpoint(path: string, endpointId: number): Endpoint {
  const db = new Database(path, { readonly: true, fileMustExist: true, ...binding() })
  try {
    const row = db
      .prepare(
        'SELECT id, method, route, monitor_level, first_seen, last_requested FROM endpoint WHERE id = ?',
      )
      .get(endpointId) as EndpointRow | undefined
    if (row === undefined) {
      throw badArgument(`there is no endpoint with id ${endpointId} in the dataset`)
    }
    return toEndpoint(row)
  } finally {
    db.close()
  }
}

/** Sets a level in a metrics file by method and route (ids differ between files). */
function setLevelByName(path: string, method: string, route: string, level: 0 | 1 | 2 | 3): void {
  const db = openWritable(path)
  let id: number | undefined
  try {
    id = db
      .prepare('SELECT id FROM endpoint WHERE method = ? AND route = ?')
      .pluck()
      .get(method, route) as number | undefined
  } finally {
    db.close()
  }
  if (id === undefined) throw badArgument(`${path} has no endpoint ${method} ${route}`)
  writeMonitorLevel(path, id, level)
}
