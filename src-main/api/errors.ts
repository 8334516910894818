import { isApiError, type ApiError } from './contract.js'

export { isApiError }

export type ApiErrorCode = ApiError['code']

/**
 * An `ApiError` that can be thrown. It crosses the process boundary as the
 * plain data of `toJSON()`: IPC and HTTP both send `{ code, message }`.
 */
export class DashboardError extends Error implements ApiError {
  override readonly name = 'DashboardError'
  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message)
  }

  toJSON(): ApiError {
    return { code: this.code, message: this.message }
  }
}

export function badArgument(message: string): DashboardError {
  return new DashboardError('BAD_ARGUMENT', message)
}

/** SQLite found damaged pages (SQLITE_CORRUPT and its extended codes, SQLITE_NOTADB). */
export function isCorruption(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB')
}

/**
 * Turns anything thrown into the data the UI gets. SQLite's own errors that
 * a person can act on keep their meaning; the rest become INTERNAL.
 */
export function toApiError(error: unknown): ApiError {
  if (error instanceof DashboardError) return error.toJSON()
  if (isApiError(error)) return { code: error.code, message: error.message }
  const sqliteCode = (error as { code?: unknown } | null)?.code
  const message = error instanceof Error ? error.message : String(error)
  if (typeof sqliteCode === 'string') {
    if (isCorruption(error)) {
      return { code: 'CORRUPT', message: `The metrics file is damaged: ${message}` }
    }
    if (sqliteCode.startsWith('SQLITE_READONLY')) {
      return { code: 'READ_ONLY', message: `The metrics file cannot be written: ${message}` }
    }
  }
  return { code: 'INTERNAL', message: `Unexpected error: ${message}` }
}
