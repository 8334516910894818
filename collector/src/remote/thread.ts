/*
 * Runs a task of the remote API in a worker thread of its own, one thread
 * per task, ended when the task is; on the app's thread where no thread can
 * start. The thread's entry is found like the writer thread's (writerEntry):
 * beside it in the ESM and CommonJS builds, with tsx in the TypeScript sources.
 */
import { Worker } from 'node:worker_threads'
import { threadEntry } from '../writer-entry.js'
import { INLINE_STEPS, RemoteTaskError, runTask, type Task } from './tasks.js'

// Plain CommonJS, the same for every build: loads the entry (after tsx for the sources).
const BOOTSTRAP = `
const { parentPort, workerData } = require('node:worker_threads')
;(async () => {
  if (workerData.tsx !== undefined) (await import(workerData.tsx)).register()
  await import(workerData.entry)
})().catch((error) => parentPort.postMessage({ ok: false, name: error.name, message: String(error.message) }))`

/** What a thread answers: the task's result, or its error as data. */
export type ThreadReply =
  | { ok: true; result: unknown }
  | { ok: false; name: string; message: string; code?: string; status?: number }

/** The thread entry's location, or undefined when the sources run without a loader for it. */
function taskEntry(): { entry: string; tsx: string | undefined } | undefined {
  try {
    return threadEntry('remote/thread-entry')
  } catch {
    return undefined
  }
}

/** Turns an error that crossed from the thread back into one of ours. */
function revive(reply: Extract<ThreadReply, { ok: false }>): Error {
  if (reply.name === 'RemoteTaskError') return new RemoteTaskError(reply.message, reply.status!)
  return Object.assign(new Error(reply.message), { name: reply.name, code: reply.code })
}

/** Runs `task`; aborting `signal` stops it after its current step. */
export function runRemoteTask<T>(task: Task, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  const location = taskEntry()
  if (location === undefined) return runTask(task, signal, INLINE_STEPS) as Promise<T>
  return new Promise<T>((resolve, reject) => {
    let worker: Worker
    try {
      worker = new Worker(BOOTSTRAP, {
        eval: true,
        workerData: { ...location, task },
        // The app's own flags and loaders are not the task's business.
        execArgv: [],
        env: {},
      })
    } catch {
      runTask(task, signal, INLINE_STEPS).then((result) => resolve(result as T), reject)
      return
    }
    worker.unref() // a task under way does not keep the process alive
    const abort = (): void => worker.postMessage('abort')
    signal.addEventListener('abort', abort, { once: true })
    let settled = false
    const settle = (error: Error | undefined, result?: unknown): void => {
      if (settled) return
      settled = true
      signal.removeEventListener('abort', abort)
      if (error === undefined) resolve(result as T)
      else reject(error)
    }
    worker.once('message', (reply: ThreadReply) =>
      reply.ok ? settle(undefined, reply.result) : settle(revive(reply)),
    )
    worker.once('error', (error) => settle(error))
    worker.once('exit', (code) => settle(new Error(`the remote API's thread stopped (${code})`)))
  })
}
