/*
 * How the collector and its writer thread talk: messages one way, events the
 * other, and a small shared memory both read without waiting for the other's
 * event loop (the collector blocks on it for flush(), close() and at exit).
 */
import type { MessagePort } from 'node:worker_threads'
import { NotRoutemeterFileError, SchemaTooNewError } from './schema/migrate.js'
import type { Batch, EndpointLevel } from './writer-batch.js'
import type { WriterConfig } from './writer-engine.js'

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
  /** file URL of the writer's entry module */
  entry: string
  /** file URL of tsx's loader API when the entry is TypeScript (the collector's tests) */
  tsx: string | undefined
}

/** Collector to writer; `seq` > 0 asks for DONE to be set when finished. */
export type Command =
  | { type: 'batch'; batch: Batch; seq: number; final: boolean }
  | { type: 'refresh'; seq: number }
  | { type: 'close'; seq: number }

export interface SerializedError {
  message: string
  name: string
  stack: string | undefined
  /** own properties: better-sqlite3's `code`, SchemaTooNewError's `fileVersion`... */
  properties: Record<string, unknown>
}

/** Writer to collector. */
export type WriterEvent =
  | { type: 'error'; kind: string; error: SerializedError }
  | { type: 'levels'; endpoints: EndpointLevel[] }

/** Errors that keep their class across the thread boundary (apps test for them with instanceof). */
const CLASSES: Record<string, { prototype: Error }> = {
  SchemaTooNewError,
  NotRoutemeterFileError,
}

/** An error as data: a structured clone would lose better-sqlite3's `code` and the class. */
export function serializeError(error: unknown): SerializedError {
  const err = error instanceof Error ? error : new Error(String(error))
  const properties: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(err)) {
    if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) {
      properties[key] = value
    }
  }
  return { message: err.message, name: err.name, stack: err.stack, properties }
}

export function deserializeError(data: SerializedError): Error {
  const error = new Error(data.message)
  const known = CLASSES[data.name]
  if (known !== undefined) Object.setPrototypeOf(error, known.prototype)
  Object.assign(error, data.properties)
  error.name = data.name
  if (data.stack !== undefined) error.stack = data.stack
  return error
}
