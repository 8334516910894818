/*
 * The dataset on screen: one local file as it is, a server's pulled copy, or
 * several of those merged into one file in the data folder, merged again when
 * a local source changes.
 */
import { statSync } from 'node:fs'
import { basename, join, resolve, sep } from 'node:path'
import type { DatasetSource, FileInfo, SourceRef } from '../../api/contract.js'
import { badArgument, DashboardError, toApiError } from '../../api/errors.js'
import type { DashboardService } from '../dashboard.js'
import { MetricsConnection } from '../database.js'
import { watchMetricsFile, type FileWatcher, type WatchOptions } from '../watcher.js'
import {
  MAX_MERGED_SOURCES,
  mergeIncrement,
  mergeSources,
  type MergeMark,
  type MergeSource,
} from './merge.js'
import type { Pulls } from './pulls.js'
import type { ServerList } from './server-list.js'

export interface Dataset {
  refs: SourceRef[]
  /** the file the dashboard shows */
  output: string
  /** merged datasets: how far each source was merged */
  marks: MergeMark[] | null
  watchers: FileWatcher[]
  /** stat signature of each watched file at the last merge */
  signatures: Map<string, string>
}

const MERGED_NAME = 'merged.db'

export interface DatasetsOptions {
  files: DashboardService
  servers: ServerList
  pulls: Pulls
  dataDir: string
  /** may the UI name local files to merge (web mode: only with --allow-open) */
  openAllowed: boolean
  /** watch the local files of a merged dataset; undefined: do not */
  watch: WatchOptions | undefined
}

export class Datasets {
  private dataset: Dataset | null = null
  /** one merge at a time: a change seen while merging merges again afterwards */
  private merging: Promise<void> = Promise.resolve()

  constructor(private readonly options: DatasetsOptions) {}

  /** The dataset made here, if the dashboard still shows it. */
  current(): Dataset | null {
    const dataset = this.dataset
    if (dataset === null || this.options.files.path !== dataset.output) return null
    return dataset
  }

  /** What the dashboard shows, as sources; null before any file. */
  sources(): DatasetSource[] | null {
    const dataset = this.current()
    if (dataset !== null) return dataset.refs.map((ref) => this.options.servers.describe(ref))
    const path = this.options.files.path
    return path === undefined ? null : [{ kind: 'file', label: path, serverId: null }]
  }

  /** Whether a server is part of the dataset on screen. */
  uses(serverId: string): boolean {
    return (
      this.dataset?.refs.some((ref) => ref.kind === 'server' && ref.serverId === serverId) ?? false
    )
  }

  async open(sources: SourceRef[]): Promise<FileInfo> {
    const { servers, pulls, openAllowed } = this.options
    if (sources.length > MAX_MERGED_SOURCES) {
      throw badArgument(`at most ${MAX_MERGED_SOURCES} files or servers can be opened as one`)
    }
    for (const ref of sources) {
      if (ref.kind === 'file' && !openAllowed) {
        throw new DashboardError(
          'READ_ONLY',
          'This server shows one file; start it with --allow-open to open others from the browser.',
        )
      }
      if (ref.kind === 'server') {
        servers.get(ref.serverId)
        // A server never pulled is pulled now, once.
        try {
          statSync(servers.copyPath(ref.serverId))
        } catch {
          await pulls.full(ref.serverId)
        }
      }
    }
    return this.show(sources)
  }

  /** Makes the dashboard show `refs`: one file as it is, several merged. */
  async show(refs: SourceRef[]): Promise<FileInfo> {
    const { files, servers, dataDir } = this.options
    const unique = dedupe(refs)
    await this.stopWatching()
    if (unique.length === 1) {
      const only = unique[0]!
      const output = only.kind === 'file' ? resolve(only.path) : servers.copyPath(only.serverId)
      const info = await files.openFile({ path: output })
      this.dataset = only.kind === 'file' ? null : newDataset(unique, output, null)
      return info
    }
    const output = join(dataDir, MERGED_NAME)
    const sources = this.mergeInputs(unique)
    for (const source of sources) MetricsConnection.open(source.path, { quickCheck: false }).close()
    const marks = mergeSources(output, sources)
    const dataset = newDataset(unique, output, marks)
    this.dataset = dataset
    const info = await files.openFile({ path: output })
    this.watchSources(dataset)
    return info
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
        path = this.options.servers.copyPath(ref.serverId)
        label = new URL(this.options.servers.get(ref.serverId).url).host
      }
      for (let n = 2; used.has(label); n++) label = `${label.replace(/ #\d+$/, '')} #${n}`
      used.add(label)
      return { path, label }
    })
  }

  /** Local files of a merged dataset are watched: a collector writing them makes a new merge. */
  private watchSources(dataset: Dataset): void {
    const { watch, files } = this.options
    if (watch === undefined) return
    for (const ref of dataset.refs) {
      if (ref.kind !== 'file') continue
      const path = resolve(ref.path)
      dataset.signatures.set(path, signature(path))
      dataset.watchers.push(
        watchMetricsFile(
          path,
          () => {
            if (this.current() !== dataset) return
            const now = signature(path)
            if (now === dataset.signatures.get(path)) return
            dataset.signatures.set(path, now)
            // A failed merge keeps the last one on screen, says why, and the next change tries again.
            void this.remerge(dataset).catch((error: unknown) => {
              const { code, message } = toApiError(error)
              files.reportError({
                code,
                message: `${path} changed but could not be merged again: ${message}`,
              })
            })
          },
          watch,
        ),
      )
    }
  }

  /** Merges again what is new; a full merge when a source was replaced by another file. */
  remerge(dataset: Dataset): Promise<void> {
    const next = this.merging.then(() => {
      if (this.current() !== dataset || dataset.marks === null) return
      const sources = this.mergeInputs(dataset.refs)
      const marks = mergeIncrement(dataset.output, sources, dataset.marks)
      dataset.marks = marks ?? mergeSources(dataset.output, sources)
      this.options.files.check()
    })
    this.merging = next.catch(() => undefined)
    return next
  }

  private async stopWatching(): Promise<void> {
    const watchers = this.dataset?.watchers ?? []
    if (this.dataset !== null) this.dataset.watchers = []
    await Promise.all(watchers.map((watcher) => watcher.close()))
  }

  async close(): Promise<void> {
    await this.stopWatching()
    this.dataset = null
  }
}

function newDataset(refs: SourceRef[], output: string, marks: MergeMark[] | null): Dataset {
  return { refs, output, marks, watchers: [], signatures: new Map() }
}

/** What changes when a file is written: inode, size and time of the file and its -wal. */
function signature(path: string): string {
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

function dedupe(refs: readonly SourceRef[]): SourceRef[] {
  const seen = new Set<string>()
  return refs.filter((ref) => {
    const key = ref.kind === 'file' ? `file:${resolve(ref.path)}` : `server:${ref.serverId}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}
