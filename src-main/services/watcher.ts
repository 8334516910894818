/**
 * Tells when to look at the open metrics file again. It does not decide
 * what changed (the service compares data_version and the file's identity);
 * it only calls `onActivity`:
 * - soon after chokidar sees the file or its -wal change, appear or vanish
 *   (coalesced: at most once per `debounceMs`, and never later than that
 *   after the first event, so a collector committing every 250 ms cannot
 *   postpone it forever);
 * - every `pollIntervalMs` anyway: file events are not reliable everywhere
 *   (network drives, a WAL that grows in place, editors' atomic saves), and
 *   the check behind it costs a stat and a `PRAGMA data_version`.
 */
import { watch, type FSWatcher } from 'chokidar'
import { basename } from 'node:path'

export interface WatchOptions {
  /** ms between the first file event and the check; default 250 */
  debounceMs?: number
  /** ms between two checks without file events; default 1000 */
  pollIntervalMs?: number
  /** chokidar polls instead of using native events (network drives); default false */
  usePolling?: boolean
}

export interface FileWatcher {
  close(): Promise<void>
}

export function watchMetricsFile(
  path: string,
  onActivity: () => void,
  options: WatchOptions = {},
): FileWatcher {
  const debounceMs = options.debounceMs ?? 250
  const pollIntervalMs = options.pollIntervalMs ?? 1000
  let pending: NodeJS.Timeout | undefined
  let closed = false

  const fire = (): void => {
    pending = undefined
    if (!closed) onActivity()
  }
  const schedule = (): void => {
    if (pending === undefined && !closed) pending = setTimeout(fire, debounceMs)
  }

  const shm = `${basename(path)}-shm`
  const watcher: FSWatcher = watch([path, `${path}-wal`, `${path}-shm`], {
    ignoreInitial: true,
    // The app or the web server keeps the process alive, not the watcher.
    persistent: false,
    usePolling: options.usePolling ?? false,
    interval: 500,
    // A replaced file must show up as unlink + add, not be folded into a change.
    atomic: false,
  })
  watcher.on('all', (event, changed) => {
    // Readers write their marks into -shm: only its creation and removal mean something.
    if (event === 'change' && basename(changed) === shm) return
    schedule()
  })
  // A watch error (too many watched files, a vanished folder) leaves the poll timer.
  watcher.on('error', () => undefined)

  const poll = setInterval(() => {
    if (pending === undefined) fire()
  }, pollIntervalMs)
  poll.unref()

  return {
    async close() {
      closed = true
      clearInterval(poll)
      if (pending !== undefined) clearTimeout(pending)
      await watcher.close()
    },
  }
}
