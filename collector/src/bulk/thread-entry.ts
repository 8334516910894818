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
  type BulkError,
  type BulkWorkerData,
} from './bulk-writer.js'
import { serializeError } from '../threads/errors.js'

const data = workerData as BulkWorkerData
const control = new Int32Array(data.control)

let inserter: BulkInserter | undefined
function fail(error: unknown): void {
  if (Atomics.load(control, FAILED) === 1) return
  data.errors.postMessage({ type: 'error', error: serializeError(error) } satisfies BulkError)
  Atomics.store(control, FAILED, 1)
}
function finished(): void {
  Atomics.sub(control, OUTSTANDING, 1)
  Atomics.notify(control, OUTSTANDING)
}

/**
 * Opened at the first command, not when the thread starts: the thread loads
 * its modules (a second with tsx) while its caller still prepares the file.
 */
function opened(): BulkInserter | undefined {
  if (inserter === undefined && Atomics.load(control, FAILED) === 0) {
    try {
      inserter = new BulkInserter(data.path, data.options)
    } catch (error) {
      fail(error)
    }
  }
  return inserter
}

parentPort!.on('message', (command: BulkCommand) => {
  if (command.type === 'batch') {
    const target = opened()
    if (target !== undefined && Atomics.load(control, FAILED) === 0) {
      try {
        target.write(command.batch)
      } catch (error) {
        fail(error)
      }
    }
    finished()
  } else {
    try {
      // Opened even with no batch written: a file it could not write is still refused.
      opened()?.close()
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
