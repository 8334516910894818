/*
 * Runs a task of the remote API in a worker thread of its own, one thread
 * per task, ended when the task is; on the app's thread where no thread can
 * start.
 */
import { deserializeError, type SerializedError } from '../threads/errors.js'
import { startThread, type LoadFailed } from '../threads/start.js'
import { INLINE_STEPS, RemoteTaskError, runTask, type Task } from './tasks.js'

/** What a thread answers: the task's result, or its error as data. */
export type ThreadReply =
  { type: 'result'; result: unknown } | { type: 'error'; error: SerializedError }

/** Runs `task`; aborting `signal` stops it after its current step. */
export function runRemoteTask<T>(task: Task, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  const worker = startThread('remote/thread-entry', { task }, { env: {} })
  if (worker === undefined) return runTask(task, signal, INLINE_STEPS) as Promise<T>
  return new Promise<T>((resolve, reject) => {
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
    worker.once('message', (reply: ThreadReply | LoadFailed) =>
      reply.type === 'result'
        ? settle(undefined, reply.result)
        : settle(deserializeError(reply.error, { RemoteTaskError })),
    )
    worker.once('error', (error) => settle(error))
    worker.once('exit', (code) => settle(new Error(`the remote API's thread stopped (${code})`)))
  })
}
