/*
 * What writes a collector's batches into the metrics file: opens (and reopens)
 * the file, keeps the rows it could not write yet, backs off while the file is
 * busy or full, and notices monitoring levels changed by another connection.
 * It runs in the writer thread, or on the app's thread when no thread can run.
 */
import type { MonitorLevel } from '../schema/types.js'
import type { OpenRequestStore, RequestStore, StoreConfig } from '../store/contract.js'
import {
  openMetricsStore,
  WRITE_BUSY_TIMEOUT_MS,
  type EndpointState,
} from '../store/metrics-store.js'
import { decodeRows, type Batch, type EndpointLevel } from './batch.js'
import { HeldRequests } from './held-requests.js'

/** Where the writer writes (the store's config). */
export type WriterConfig = StoreConfig

/** What the writer tells the collector. */
export interface WriterEvents {
  /** an error, reported on the app's thread (onError or a warning) */
  error(error: unknown, kind: string): void
  /** the levels of the file's endpoints: after opening it, or another connection's change */
  levels(endpoints: EndpointLevel[]): void
  /**
   * Rows that left the writer: written, or skipped because their endpoint is
   * at level 0 in the file. `wrote` is true after each successful write.
   */
  settled(written: number, skipped: number, wrote: boolean): void
}

const REOPEN_DELAY_MS = 2000
const MAX_WRITE_BACKOFF_MS = 4000
const FINAL_BUSY_TIMEOUT_MS = 2000
/** Another connection's lock is reported once it has lasted this long: shorter ones are routine. */
export const LOCK_REPORT_AFTER_MS = 5000

/** How a writer waits after a busy or full file. */
export interface WriterPacing {
  /**
   * true (on the app's thread, where each attempt may block it for the busy
   * timeout): back off from 250 ms to 4 s. false (the writer thread): try
   * again at every flush, so that writing resumes as soon as the fault clears.
   */
  backOff: boolean
}

export class BatchWriter {
  private store: RequestStore | undefined
  private nextOpenAttempt = 0
  /** after a busy or full file, writes pause this long (doubling up to 4 s) */
  private writeBackoff = 0
  private nextWriteAttempt = 0
  /** endpoints by the collector's slot */
  private readonly slots: EndpointState[] = []
  /** every endpoint known, by "METHOD route": the collector's and the file's */
  private readonly byKey = new Map<string, EndpointState>()
  private readonly pending = new HeldRequests()
  private readonly touched = new Set<EndpointState>()
  private discovered: EndpointState[] = []
  private lastDataVersion: number | undefined
  private closed = false
  /** when writes began to meet another connection's lock (0: they do not) */
  private lockedSince = 0
  private lockReported = false
  /** request rows out of range already reported, on the open connection */
  private invalidReported = 0

  constructor(
    private readonly config: WriterConfig,
    private readonly events: WriterEvents,
    private readonly pacing: WriterPacing = { backOff: true },
    /** the storage engine: one SQLite file unless told otherwise */
    private readonly open: OpenRequestStore = openMetricsStore,
  ) {}

  /** Rows waiting to be written. */
  get held(): number {
    return this.pending.count
  }

  /** Whether anything waits to be written. */
  get hasWork(): boolean {
    return (
      this.pending.count > 0 ||
      this.pending.outliers.length > 0 ||
      this.pending.profiles.length > 0 ||
      this.touched.size > 0 ||
      this.discovered.length > 0
    )
  }

  /** Takes a batch over; rows of endpoints the file has at level 0 are left out. */
  receive(batch: Batch): void {
    for (let i = 0; i < batch.endpoints.length; i++) {
      const { method, route, level } = batch.endpoints[i]!
      this.slots[batch.firstSlot + i] = this.known(method, route, level)
    }
    // An endpoint in the file has the file's level; a new one the collector's.
    const skipped = decodeRows(
      batch,
      this.slots,
      (endpoint) => endpoint.id === undefined || endpoint.level !== 0,
      this.pending,
    )
    const touched = batch.touched
    for (let i = 0; i < touched.length; i += 2) {
      const endpoint = this.slots[touched[i]!]!
      const time = touched[i + 1]!
      if (time > endpoint.pendingLastRequested) endpoint.pendingLastRequested = time
      this.touched.add(endpoint)
    }
    for (const slot of batch.discovered) this.discovered.push(this.slots[slot]!)
    for (const record of batch.outliers) {
      const endpoint = this.slots[record.slot]
      if (endpoint !== undefined) this.pending.outliers.push({ endpoint, record })
    }
    for (const record of batch.profiles) {
      const endpoint = this.slots[record.slot]
      if (endpoint !== undefined) this.pending.profiles.push({ endpoint, record })
    }
    if (skipped > 0) this.events.settled(0, skipped, false)
  }

  private known(method: string, route: string, level: MonitorLevel): EndpointState {
    const key = `${method} ${route}`
    let endpoint = this.byKey.get(key)
    if (endpoint === undefined) {
      endpoint = { id: undefined, method, route, level, pendingLastRequested: 0 }
      this.byKey.set(key, endpoint)
    }
    return endpoint
  }

  /**
   * Writes what is held in one transaction; false if the file could not be
   * written (the rows are kept). `final`: the last write before closing or
   * exiting, which opens the file even if an attempt failed less than 2 s ago
   * and waits longer for another process's lock.
   */
  write(final = false): boolean {
    if (!this.hasWork) return true
    if (final) {
      this.nextOpenAttempt = 0
      this.nextWriteAttempt = 0
    } else if (Date.now() < this.nextWriteAttempt) return false
    const store = this.openStore()
    if (store === undefined) return false
    const requests = this.pending
    const touched = [...this.touched]
    const discovered = this.discovered
    const unassigned = new Map<EndpointState, MonitorLevel>()
    for (const endpoint of this.byKey.values()) {
      if (endpoint.id === undefined) unassigned.set(endpoint, endpoint.level)
    }
    if (final) store.setBusyTimeout(FINAL_BUSY_TIMEOUT_MS)
    try {
      store.write(requests, touched, discovered)
    } catch (error) {
      this.writeFailed(error, final)
      return false
    } finally {
      if (final && this.store === store) store.setBusyTimeout(WRITE_BUSY_TIMEOUT_MS)
    }
    this.writeBackoff = 0
    this.lockedSince = 0
    this.lockReported = false
    const written = requests.count
    requests.clear()
    this.discovered = []
    for (const endpoint of touched) endpoint.pendingLastRequested = 0
    this.touched.clear()
    // A new endpoint takes the level the file already had for it (another process's).
    const changed: EndpointLevel[] = []
    for (const [endpoint, level] of unassigned) {
      if (endpoint.id !== undefined && endpoint.level !== level) {
        changed.push([endpoint.method, endpoint.route, endpoint.level])
      }
    }
    this.events.settled(written, 0, true)
    if (changed.length > 0) this.events.levels(changed)
    this.reportInvalidRows(store)
    const limited = store.takeClientLimitReport()
    if (limited !== undefined) this.events.error(new Error(limited), 'maxNewClients')
    return true
  }

  /** Reports request rows that the rollups left out (another program's values), once each. */
  private reportInvalidRows(store: RequestStore): void {
    const invalid = store.invalidRequestRows()
    if (invalid <= this.invalidReported) return
    const more = invalid - this.invalidReported
    this.invalidReported = invalid
    this.events.error(
      new Error(
        `${more} request row(s) in ${store.path} have values out of range (a duration, time, ` +
          'status or id that no collector writes): they are left out of the rollups; recording goes on',
      ),
      'invalid-rows',
    )
  }

  /**
   * Reports a failed write and decides when to try again. A lock held by
   * another connection (a cluster's other workers, a backup) is reported only
   * once it outlasts LOCK_REPORT_AFTER_MS, or when it keeps the last write out.
   */
  private writeFailed(error: unknown, final: boolean): void {
    this.reportFailure(error, 'write', final)
    if (!isTransient(error)) {
      this.dropStore()
      return
    }
    if (this.pacing.backOff) {
      this.writeBackoff = Math.min(Math.max(this.writeBackoff * 2, 250), MAX_WRITE_BACKOFF_MS)
      this.nextWriteAttempt = Date.now() + this.writeBackoff
    }
  }

  private reportFailure(error: unknown, kind: string, final: boolean): void {
    if (!isLock(error) || final) {
      this.events.error(error, kind)
      return
    }
    const now = Date.now()
    if (this.lockedSince === 0) this.lockedSince = now
    if (!this.lockReported && now - this.lockedSince >= LOCK_REPORT_AFTER_MS) {
      this.lockReported = true
      this.events.error(error, kind)
    }
  }

  /**
   * Applies the file's retention policy for about `budgetMs` (short
   * transactions, between writes). Another connection's lock only defers
   * it; anything else is reported. Never throws.
   */
  maintain(budgetMs: number): void {
    const store = this.store
    if (store === undefined || this.closed) return
    try {
      store.maintain(Date.now(), budgetMs)
    } catch (error) {
      if (!isLock(error)) this.events.error(error, 'retention')
    }
  }

  /** Applies monitoring levels changed in the file by another connection (the desktop app). */
  pollLevels(force = false): void {
    const store = this.openStore()
    if (store === undefined) return
    try {
      const dataVersion = store.dataVersion()
      if (dataVersion === this.lastDataVersion && !force) return
      this.lastDataVersion = dataVersion
      this.loadEndpoints(store)
    } catch (error) {
      this.events.error(error, 'poll')
      if (!isTransient(error)) this.dropStore()
    }
  }

  private loadEndpoints(store: RequestStore): void {
    const levels: EndpointLevel[] = []
    for (const row of store.endpoints()) {
      const endpoint = this.known(row.method, row.route, row.monitor_level)
      endpoint.id = row.id
      endpoint.level = row.monitor_level
      levels.push([row.method, row.route, row.monitor_level])
    }
    this.events.levels(levels)
  }

  /** The open store; opens (or reopens a deleted or replaced file) when needed, at most every 2 s. */
  openStore(): RequestStore | undefined {
    if (this.closed) return undefined
    if (this.store !== undefined) {
      const state = this.store.fileState()
      if (state === 'same') return this.store
      if (state === 'overwritten') {
        this.events.error(
          new Error(
            `the metrics file ${this.store.path} was overwritten in place by another file; ` +
              'nothing more is written into that one: it is opened anew, and written only if it is a Routemeter file',
          ),
          'replaced',
        )
        this.dropStore(true)
      } else {
        this.events.error(
          new Error(`the metrics file ${this.store.path} was deleted or replaced; reopening it`),
          'replaced',
        )
        this.dropStore()
      }
    }
    const now = Date.now()
    if (now < this.nextOpenAttempt) return undefined
    try {
      this.store = this.open(this.config, now)
      this.invalidReported = 0
      this.lastDataVersion = this.store.dataVersion()
      this.loadEndpoints(this.store)
      return this.store
    } catch (error) {
      // The writer thread tries a locked file again at the next flush; anything else in 2 s.
      const locked = isLock(error) && !this.pacing.backOff
      this.nextOpenAttempt = locked ? 0 : now + REOPEN_DELAY_MS
      this.reportFailure(error, 'open', false)
      return undefined
    }
  }

  /**
   * Forgets the connection; endpoints get their ids again from the next file.
   * `overwritten`: the file is another one now, which must not be written to.
   */
  private dropStore(overwritten = false): void {
    try {
      if (overwritten) this.store?.abandon()
      else this.store?.close()
    } catch {
      // closing a broken connection may fail too; it is dropped either way
    }
    this.store = undefined
    this.nextOpenAttempt = Date.now() + REOPEN_DELAY_MS
    for (const endpoint of this.byKey.values()) {
      if (endpoint.id !== undefined) {
        endpoint.id = undefined
        this.touched.add(endpoint)
      }
    }
  }

  close(): void {
    this.closed = true
    this.store?.close()
    this.store = undefined
  }
}

/** Another connection holds the lock (SQLITE_BUSY, SQLITE_LOCKED and their extended codes). */
function isLock(error: unknown): boolean {
  const code = (error as { code?: unknown }).code
  return (
    typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
  )
}

/** SQLITE_BUSY/LOCKED/FULL/IOERR may pass: keep the connection and the rows, try again. */
export function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown }).code
  return (
    typeof code === 'string' &&
    (code.startsWith('SQLITE_BUSY') ||
      code.startsWith('SQLITE_LOCKED') ||
      code === 'SQLITE_FULL' ||
      code.startsWith('SQLITE_IOERR'))
  )
}
