/*
 * Entry of a remote API thread (thread.ts): runs one task, answers, ends.
 * Any message from the collector means: stop after the current step.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { serializeError } from '../threads/errors.js'
import { runTask, THREAD_STEPS, type Task } from './tasks.js'
import type { ThreadReply } from './thread.js'

const port = parentPort!
const aborted = new AbortController()
port.on('message', () => aborted.abort())

runTask((workerData as { task: Task }).task, aborted.signal, THREAD_STEPS).then(
  (result) => reply({ type: 'result', result }),
  (error: unknown) => reply({ type: 'error', error: serializeError(error) }),
)

function reply(message: ThreadReply): void {
  port.postMessage(message)
  port.close() // nothing more to wait for: the thread ends
}
