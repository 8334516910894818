/*
 * The seam between the writer and a storage engine: what BatchWriter needs of
 * wherever the requests go. MetricsStore (one SQLite file) is the engine today;
 * a second one (PostgreSQL, for many nodes) implements the same interface.
 */
import type { VersionSource } from '../schema/types.js'
import type { ExplicitPolicy } from '../retention/policy.js'
import type { HeldRequests } from '../writer/held-requests.js'
import type { FileState } from './file-header.js'
import type { EndpointState, StoredEndpoint } from './metrics-store.js'

/** Where a writer writes, and as what. */
export interface StoreConfig {
  database: string
  version: { name: string; source: VersionSource; tags?: readonly string[] | undefined }
  node: string
  /** most new users (and, apart, IPs) added per hour; default: no limit */
  maxNewClients?: number
  /** what the `retention` and `sampling` options set (undefined: the file's policy, or the defaults) */
  retention?: ExplicitPolicy | undefined
}

/** An open store the writer writes batches into. Every method is synchronous and may throw. */
export interface RequestStore {
  /** where it writes, for messages */
  readonly path: string
  /**
   * Writes, in one transaction: endpoints discovered from the app's routes,
   * requests, and the last request time of the endpoints they touched.
   */
  write(requests: HeldRequests, touched: EndpointState[], discovered: EndpointState[]): void
  /** the endpoints the store holds, with their monitoring levels */
  endpoints(): StoredEndpoint[]
  /** changes whenever another writer or the desktop app commits: a cheap way to notice level changes */
  dataVersion(): number
  /** how long the next writes wait for another connection's lock, in ms */
  setBusyTimeout(ms: number): void
  /** whether the store is still the one opened, or was deleted, replaced or overwritten */
  fileState(): FileState
  /** request rows of other programs left out of the rollups for values out of range, since opened */
  invalidRequestRows(): number
  /** a message when users or IPs were recorded as `(other)` since the last one (at most hourly) */
  takeClientLimitReport(): string | undefined
  /**
   * Applies the retention policy for at most about `budgetMs`, in short
   * transactions; returns whether more remains to do. May throw (busy).
   */
  maintain(now?: number, budgetMs?: number): boolean
  /** writes what it holds in memory and closes */
  close(): void
  /** lets go of a store that was replaced by another one, writing nothing into it */
  abandon(): void
}

/** Opens the store a writer writes into. */
export type OpenRequestStore = (config: StoreConfig, now: number) => RequestStore
