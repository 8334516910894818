import { createReadStream, createWriteStream, rmSync } from 'node:fs'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import type { CopyFacts } from './tasks.js'
import { runRemoteTask } from './thread.js'

/** A gzip-compressed copy of the metrics file in a temporary folder, ready to be served. */
export interface Snapshot {
  /** the temporary folder; remove it with removeSnapshot() once served */
  dir: string
  gzipPath: string
  compressedBytes: number
  uncompressedBytes: number
  schemaVersion: number
  /** highest request id of the server's file when the copy was taken (0: no request) */
  lastRequestId: number
  /** for a delta: the copy holds the requests with a higher id only */
  since: number | undefined
}

// Temporary folders still in use, removed if the process exits mid-snapshot.
const liveDirs = new Set<string>()
let exitHookInstalled = false

function trackDir(dir: string): void {
  liveDirs.add(dir)
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const live of liveDirs) rmSync(live, { recursive: true, force: true })
  })
}

const DIR_PREFIX = 'routemeter-snapshot-'

/**
 * Chunks of 16 KiB rather than 64: the buffers of a 100 MB stream are
 * garbage at once, and smaller ones are collected sooner (the process's
 * resident memory grows less while a snapshot is made and sent).
 */
export const SMALL_CHUNKS = { highWaterMark: 16 * 1024 }
let swept = false

/**
 * Removes the folders of snapshots whose process is gone: a process killed
 * (SIGKILL, or a signal without a handler) mid-snapshot has no exit hook.
 * A folder's name carries its process id.
 */
async function sweepOrphans(): Promise<void> {
  if (swept) return
  swept = true
  const root = tmpdir()
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const pid = Number(/^routemeter-snapshot-(\d+)-/.exec(name)?.[1])
    if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue
    await rm(join(root, name), { recursive: true, force: true }).catch(() => undefined)
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' // alive, another user's
  }
}

export async function removeSnapshot(dir: string): Promise<void> {
  liveDirs.delete(dir)
  await rm(dir, { recursive: true, force: true })
}

/**
 * Copies the metrics file at `database` into a new temporary folder and
 * compresses it: the whole file (SQLite's online backup), or with `since`,
 * every table but the requests in full plus the requests with a higher id.
 * Aborting `signal` stops the work after its current step and removes the folder.
 */
export async function createSnapshot(
  database: string,
  options: { since?: number; signal: AbortSignal },
): Promise<Snapshot> {
  const { since, signal } = options
  await sweepOrphans()
  const dir = await mkdtemp(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`))
  trackDir(dir)
  try {
    const { path, schemaVersion, lastRequestId } = await runRemoteTask<CopyFacts>(
      { kind: 'snapshot', database, dir, since },
      signal,
    )
    const uncompressedBytes = (await stat(path)).size
    const gzipPath = `${path}.gz`
    // zlib compresses on libuv's thread pool: the event loop only moves buffers. (In the
    // task's thread, the buffers would wait for a garbage collection of a second heap.)
    await pipeline(
      createReadStream(path, SMALL_CHUNKS),
      createGzip(),
      createWriteStream(gzipPath),
      {
        signal,
      },
    )
    await rm(path)
    const compressedBytes = (await stat(gzipPath)).size
    return {
      dir,
      gzipPath,
      compressedBytes,
      uncompressedBytes,
      schemaVersion,
      lastRequestId,
      since,
    }
  } catch (error) {
    await removeSnapshot(dir)
    throw error
  }
}
