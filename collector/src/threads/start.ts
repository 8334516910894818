/*
 * Starts one of the collector's threads (the writer, the bulk writer, a remote
 * API task), all the same way: one bootstrap, found entries, no app flags.
 */
import { Worker, type MessagePort, type TransferListItem } from 'node:worker_threads'
import { threadEntry } from './entry.js'
import type { SerializedError } from './errors.js'

/** What a thread posts when its entry module cannot load. */
export interface LoadFailed {
  type: 'load-failed'
  error: SerializedError
}

/** How a thread that never started tells whoever may be waiting for it. */
export interface OnLoadFailure {
  /** gets a LoadFailed message; default the thread's parentPort */
  port?: MessagePort
  /** Int32 words set, then `notify` woken, so that nobody blocks on a thread that is not there */
  control?: SharedArrayBuffer
  set?: Array<[word: number, value: number]>
  notify?: number
}

// Plain CommonJS, the same for every build: registers tsx for the sources, loads the entry.
const BOOTSTRAP = `
const { parentPort, workerData } = require('node:worker_threads')
;(async () => {
  if (workerData.tsx !== undefined) (await import(workerData.tsx)).register()
  await import(workerData.entry)
})().catch((error) => {
  const failure = workerData.onLoadFailure ?? {}
  const data = { name: String(error?.name ?? 'Error'), message: String(error?.message ?? error), stack: error?.stack, properties: {} }
  ;(failure.port ?? parentPort).postMessage({ type: 'load-failed', error: data })
  if (failure.control !== undefined) {
    const control = new Int32Array(failure.control)
    for (const [word, value] of failure.set ?? []) Atomics.store(control, word, value)
    if (failure.notify !== undefined) Atomics.notify(control, failure.notify)
  }
})`

/**
 * Starts the thread whose entry is `module` (its path in the package's source
 * folder, without extension) with `data` as its workerData (plus `entry`,
 * `tsx` and `onLoadFailure`). Undefined when no thread can run it: the caller
 * then does the work on its own thread.
 */
export function startThread(
  module: string,
  data: object,
  options: {
    transferList?: TransferListItem[]
    onLoadFailure?: OnLoadFailure
    /** the thread's process.env; default a copy of the app's */
    env?: Record<string, string>
  } = {},
): Worker | undefined {
  let location: { entry: string; tsx: string | undefined }
  try {
    location = threadEntry(module)
  } catch {
    return undefined // TypeScript sources without a loader for the thread
  }
  const transferList = new Set(options.transferList)
  if (options.onLoadFailure?.port !== undefined) transferList.add(options.onLoadFailure.port)
  try {
    return new Worker(BOOTSTRAP, {
      eval: true,
      workerData: { ...data, ...location, onLoadFailure: options.onLoadFailure },
      transferList: [...transferList],
      // The app's own flags and loaders are not the thread's business.
      execArgv: [],
      ...(options.env === undefined ? {} : { env: options.env }),
    })
  } catch {
    return undefined
  }
}
