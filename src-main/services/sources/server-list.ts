/*
 * The servers added to the app, with their tokens (a ServerStore keeps them),
 * and where each one's pulled copy lives in the data folder.
 */
import { statSync } from 'node:fs'
import { join } from 'node:path'
import type { DatasetSource, ServerEntry, SourceRef } from '../../api/contract.js'
import { badArgument, DashboardError } from '../../api/errors.js'
import { RemoteClient } from './remote.js'
import { serverId, type ServerStore, type StoredServer } from './servers.js'

export class ServerList {
  private servers: StoredServer[]

  constructor(
    private readonly store: ServerStore,
    private readonly dataDir: string,
    /** may this app contact servers (web mode: only with --allow-remote) */
    readonly remoteAllowed: boolean,
  ) {
    this.servers = store.load()
  }

  entries(): ServerEntry[] {
    return this.servers.map((server) => this.entry(server))
  }

  entry(server: StoredServer): ServerEntry {
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
  copyPath(id: string): string {
    const server = this.servers.find((candidate) => serverId(candidate.url) === id)
    const host =
      server === undefined ? 'server' : new URL(server.url).host.replace(/[^\w.-]+/g, '_')
    return join(this.dataDir, `${host}-${id.slice(0, 8)}.db`)
  }

  /** A server that was added; a BAD_ARGUMENT error otherwise. */
  get(id: string): StoredServer {
    const server = this.servers.find((candidate) => serverId(candidate.url) === id)
    if (server === undefined) throw badArgument(`no server with id ${id} was added`)
    return server
  }

  requireRemote(): void {
    if (!this.remoteAllowed) {
      throw new DashboardError(
        'READ_ONLY',
        'This web server does not contact other servers; start it with --allow-remote to pull from servers.',
      )
    }
  }

  /** Checks the URL and token with the server, then keeps it (replacing one of the same URL). */
  async add(url: string, token: string): Promise<ServerEntry> {
    this.requireRemote()
    const client = new RemoteClient(url, token)
    const info = await client.info(AbortSignal.timeout(15_000))
    const id = serverId(url)
    const server: StoredServer = { url: client.label, token, node: info.node }
    this.servers = [...this.servers.filter((other) => serverId(other.url) !== id), server]
    this.store.save(this.servers)
    return this.entry(server)
  }

  /** Forgets a server (its copy is removed by the caller). */
  remove(id: string): void {
    this.get(id)
    this.servers = this.servers.filter((server) => serverId(server.url) !== id)
    this.store.save(this.servers)
  }

  /** A source of a dataset as the UI names it. */
  describe(ref: SourceRef): DatasetSource {
    if (ref.kind === 'file') return { kind: 'file', label: ref.path, serverId: null }
    const server = this.servers.find((candidate) => serverId(candidate.url) === ref.serverId)
    return { kind: 'server', label: server?.url ?? ref.serverId, serverId: ref.serverId }
  }
}
