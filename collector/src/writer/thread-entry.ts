/*
 * The writer thread's entry: owns the MetricsStore, writes each batch the
 * collector hands over, retries what it could not write, polls for level
 * changes, and reports through events and the shared control block.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { serializeError } from '../threads/errors.js'
import { BatchWriter } from './batch-writer.js'
import {
  CONTROL_BYTES,
  DONE,
  GOOD_WRITES,
  OUTSTANDING,
  READY,
  RESULT,
  STATE,
  STOPPED,
  WRITTEN_OFFSET,
  type Command,
  type WorkerData,
  type WriterEvent,
} from './protocol.js'

const data = workerData as WorkerData
const control = new Int32Array(data.control, 0, WRITTEN_OFFSET / 4)
const written = new BigInt64Array(
  data.control,
  WRITTEN_OFFSET,
  (CONTROL_BYTES - WRITTEN_OFFSET) / 8,
)
const events = data.events
const send = (event: WriterEvent): void => events.postMessage(event)

const writer = new BatchWriter(
  data.config,
  {
    error: (error, kind) => send({ type: 'error', kind, error: serializeError(error) }),
    levels: (endpoints) => send({ type: 'levels', endpoints }),
    settled: (rows, skipped, wrote) => {
      if (rows + skipped > 0) Atomics.sub(control, OUTSTANDING, rows + skipped)
      if (rows > 0) Atomics.add(written, 0, BigInt(rows))
      if (wrote) Atomics.add(control, GOOD_WRITES, 1)
    },
  },
  { backOff: false },
)

/** Milliseconds of retention work per flush interval, so that batches never wait long. */
const RETENTION_BUDGET_MS = 50

/** Marks command `seq` finished; the collector may be blocked on it. */
function done(seq: number, result: boolean): void {
  if (seq <= 0) return
  Atomics.store(control, RESULT, result ? 1 : 0)
  Atomics.store(control, DONE, seq)
  Atomics.notify(control, DONE)
}

// Rows kept after a failed write are retried without waiting for the next batch.
const retryTimer = setInterval(() => {
  if (writer.hasWork) writer.write()
  writer.maintain(RETENTION_BUDGET_MS)
}, data.flushInterval)
const pollTimer = setInterval(() => writer.pollLevels(), data.levelPollInterval)

parentPort!.on('message', (command: Command) => {
  switch (command.type) {
    case 'batch':
      writer.receive(command.batch)
      done(command.seq, writer.write(command.final))
      break
    case 'refresh':
      writer.pollLevels(true)
      done(command.seq, true)
      break
    case 'close':
      clearInterval(retryTimer)
      clearInterval(pollTimer)
      writer.close()
      Atomics.store(control, STATE, STOPPED)
      done(command.seq, true)
      parentPort!.close()
      events.close()
      break
  }
})

// However the thread ends (a bug, an uncaught error), nobody must wait for it any longer.
process.on('exit', () => {
  Atomics.store(control, STATE, STOPPED)
  Atomics.notify(control, DONE)
})

// Open the file now: its levels reach the collector before the first requests are written.
writer.openStore()
Atomics.store(control, STATE, READY)
Atomics.notify(control, STATE)
