/**
 * Where the dataset on screen comes from: a local file, a copy pulled from
 * a server, or several of those merged into one file. The dashboard service
 * always shows one SQLite file; this service makes that file (in `dataDir`)
 * and keeps it up to date, and sends monitoring-level changes back to every
 * source. Its parts: the servers (server-list.ts), pulling their files
 * (pulls.ts), the dataset on screen (datasets.ts), levels (levels.ts).
 *
 *   dataDir/<server id>.db   a server's pulled copy (refreshed with deltas)
 *   dataDir/merged.db        several sources as one
 */
import { mkdirSync, rmSync } from 'node:fs'
import { resolve } from 'node:path'
import type {
  FileInfo,
  LevelChange,
  ServerEntry,
  SourcesApi,
  SourcesArgs,
  SourcesState,
} from '../../api/contract.js'
import { badArgument } from '../../api/errors.js'
import type { DashboardService } from '../dashboard.js'
import type { WatchOptions } from '../watcher.js'
import { Datasets } from './datasets.js'
import { setDatasetLevel } from './levels.js'
import { Pulls } from './pulls.js'
import { ServerList } from './server-list.js'
import { memoryServerStore, type ServerStore } from './servers.js'

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

/** The sources API. Arguments arrive validated, where they enter (IPC or HTTP). */
export class SourcesService implements SourcesApi {
  private readonly files: DashboardService
  private readonly servers: ServerList
  private readonly pulls: Pulls
  private readonly datasets: Datasets
  private readonly openAllowed: boolean

  constructor(options: SourcesServiceOptions) {
    this.files = options.files
    this.openAllowed = options.openAllowed ?? true
    const dataDir = resolve(options.dataDir)
    // Pulled copies are other servers' metrics: readable by this user only.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    this.servers = new ServerList(
      options.store ?? memoryServerStore(),
      dataDir,
      options.remoteAllowed ?? true,
    )
    this.pulls = new Pulls(this.servers)
    const watch = options.watch ?? true
    this.datasets = new Datasets({
      files: this.files,
      servers: this.servers,
      pulls: this.pulls,
      dataDir,
      openAllowed: this.openAllowed,
      watch: watch === false ? undefined : watch === true ? {} : watch,
    })
  }

  async state(_args: SourcesArgs<'state'>): Promise<SourcesState> {
    return {
      remoteAllowed: this.servers.remoteAllowed,
      openAllowed: this.openAllowed,
      servers: this.servers.entries(),
      pull: this.pulls.progress(),
      pullError: this.pulls.error,
      lastPull: this.pulls.last,
      dataset: this.datasets.sources(),
    }
  }

  async addServer(args: SourcesArgs<'addServer'>): Promise<ServerEntry> {
    return this.servers.add(args.url, args.token)
  }

  async removeServer(args: SourcesArgs<'removeServer'>): Promise<SourcesState> {
    const id = args.serverId
    this.servers.get(id)
    if (this.datasets.uses(id)) {
      throw badArgument('this server is part of the dataset on screen: open something else first')
    }
    rmSync(this.servers.copyPath(id), { force: true })
    this.servers.remove(id)
    return this.state({})
  }

  async pull(args: SourcesArgs<'pull'>): Promise<FileInfo> {
    await this.pulls.full(args.serverId)
    return this.datasets.show([{ kind: 'server', serverId: args.serverId }])
  }

  async cancelPull(_args: SourcesArgs<'cancelPull'>): Promise<SourcesState> {
    this.pulls.cancel()
    return this.state({})
  }

  async refresh(_args: SourcesArgs<'refresh'>): Promise<FileInfo> {
    const dataset = this.datasets.current()
    if (dataset === null)
      throw badArgument('the open file did not come from a server: there is nothing to refresh')
    for (const ref of dataset.refs)
      if (ref.kind === 'server') await this.pulls.refresh(ref.serverId)
    if (dataset.marks !== null) await this.datasets.remerge(dataset)
    // Without a watcher the dashboard would not look at the file again by itself.
    this.files.check()
    return this.files.info({})
  }

  async open(args: SourcesArgs<'open'>): Promise<FileInfo> {
    return this.datasets.open(args.sources)
  }

  async setLevel(args: SourcesArgs<'setLevel'>): Promise<LevelChange> {
    return setDatasetLevel(
      this.files,
      this.servers,
      this.datasets.current(),
      args.endpointId,
      args.level,
    )
  }

  /** Call to merge again now (tests; the watcher does it otherwise). */
  remergeNow(): Promise<void> {
    const dataset = this.datasets.current()
    return dataset === null ? Promise.resolve() : this.datasets.remerge(dataset)
  }

  async close(): Promise<void> {
    this.pulls.cancel()
    await this.datasets.close()
  }
}
