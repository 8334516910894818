/*
 * Errors crossing between the collector's threads. A structured clone keeps
 * neither better-sqlite3's `code` nor an error's class, so they cross as data.
 */
import { NotRoutemeterFileError, SchemaTooNewError } from '../schema/migrate.js'

export interface SerializedError {
  message: string
  name: string
  stack: string | undefined
  /** own properties: better-sqlite3's `code`, SchemaTooNewError's `fileVersion`... */
  properties: Record<string, unknown>
}

type ErrorClass = { prototype: Error }

/** Errors that keep their class across threads (apps test for them with instanceof). */
const CLASSES: Record<string, ErrorClass> = {
  SchemaTooNewError,
  NotRoutemeterFileError,
}

/** An error as data. */
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

/** The error again, of its class where it is one of CLASSES or of `classes`. */
export function deserializeError(
  data: SerializedError,
  classes: Record<string, ErrorClass> = {},
): Error {
  const error = new Error(data.message)
  const known = classes[data.name] ?? CLASSES[data.name]
  if (known !== undefined) Object.setPrototypeOf(error, known.prototype)
  Object.assign(error, data.properties)
  error.name = data.name
  if (data.stack !== undefined) error.stack = data.stack
  return error
}
