/*
 * The bulk writer thread's entry: inserts each batch it is handed, in order;
 * after an error it writes nothing more and the caller's next write() throws it.
 */
import { parentPort, workerData } from 'node:worker_threads'
import {
  BulkInserter,
  FAILED,
  OUTSTANDING,
  STOPPED,
  type BulkCommand,
  type BulkWorkerData,
} from './bulk-writer.js'

const data = workerData as BulkWorkerData
const control = new Int32Array(data.control)

let inserter: BulkInserter | undefined
function fail(error: unknown): void {
  if (Atomics.load(control, FAILED) === 1) return
  const { name, message, code } = error as { name?: string; message?: string; code?: string }
  data.errors.postMessage({ name: name ?? 'Error', message: String(message ?? error), code })
  Atomics.store(control, FAILED, 1)
}
function finished(): void {
  Atomics.sub(control, OUTSTANDING, 1)
  Atomics.notify(control, OUTSTANDING)
}

try {
  inserter = new BulkInserter(data.path, data.options)
} catch (error) {
  fail(error)
}

parentPort!.on('message', (command: BulkCommand) => {
  if (command.type === 'batch') {
    if (inserter !== undefined && Atomics.load(control, FAILED) === 0) {
      try {
        inserter.write(command.batch)
      } catch (error) {
        fail(error)
      }
    }
    finished()
  } else {
    try {
      inserter?.close()
    } catch (error) {
      fail(error)
    }
    parentPort!.close()
    data.errors.close()
    finished()
  }
})

// However the thread ends, nobody must wait for it any longer.
process.on('exit', () => {
  Atomics.store(control, STOPPED, 1)
  Atomics.notify(control, OUTSTANDING)
})
