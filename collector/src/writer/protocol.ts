/*
 * How the collector and its writer thread talk: messages one way, events the
 * other, and a small shared memory both read without waiting for the other's
 * event loop (the collector blocks on it for flush(), close() and at exit).
 */
import type { MessagePort } from 'node:worker_threads'
import type { SerializedError } from '../threads/errors.js'
import type { LoadFailed } from '../threads/start.js'
import type { Batch, EndpointLevel } from './batch.js'
import type { WriterConfig } from './batch-writer.js'

/** Int32 words of the shared control block. */
export const STATE = 0
/** seq of the last command the writer finished */
export const DONE = 1
/** result of that command: 1 written (or nothing to write), 0 not */
export const RESULT = 2
/** rows handed to the writer and not yet written or skipped */
export const OUTSTANDING = 3
/** successful writes so far (wraps; compared for change) */
export const GOOD_WRITES = 4
const INT32_WORDS = 8
/** byte offset of a BigInt64 word: rows written so far */
export const WRITTEN_OFFSET = INT32_WORDS * 4
export const CONTROL_BYTES = WRITTEN_OFFSET + 8

/** Values of the STATE word. */
export const STARTING = 0
export const READY = 1
export const STOPPED = 2

export interface WorkerData {
  config: WriterConfig
  flushInterval: number
  levelPollInterval: number
  control: SharedArrayBuffer
  events: MessagePort
}

/** Collector to writer; `seq` > 0 asks for DONE to be set when finished. */
export type Command =
  | { type: 'batch'; batch: Batch; seq: number; final: boolean }
  | { type: 'refresh'; seq: number }
  | { type: 'close'; seq: number }

/** Writer to collector. */
export type WriterEvent =
  | { type: 'error'; kind: string; error: SerializedError }
  | { type: 'levels'; endpoints: EndpointLevel[] }
  | LoadFailed
