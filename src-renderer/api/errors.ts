import { isApiError, type ApiError } from './types'

export { isApiError }

/** Both transports reject with an ApiError; anything else (a bug, a lost connection) is INTERNAL. */
export function toApiError(error: unknown): ApiError {
  if (isApiError(error)) return { code: error.code, message: error.message }
  const message = error instanceof Error ? error.message : String(error)
  return { code: 'INTERNAL', message }
}

/** A title a person understands for each error code. */
export function errorTitle(error: ApiError): string {
  switch (error.code) {
    case 'NO_FILE':
      return 'No metrics file is open'
    case 'FILE_MISSING':
      return 'The metrics file does not exist'
    case 'FILE_EMPTY':
      return 'The metrics file is empty'
    case 'NOT_SQLITE':
      return 'This is not a SQLite file'
    case 'CORRUPT':
      return 'The metrics file is damaged'
    case 'OTHER_APP':
      return 'This SQLite file was not written by Routemeter'
    case 'TOO_NEW':
      return 'The metrics file is from a newer Routemeter'
    case 'BAD_ARGUMENT':
      return 'The request was refused'
    case 'READ_ONLY':
      return 'The metrics file cannot be written'
    case 'WRONG_TOKEN':
      return 'The server refused the token'
    case 'UNREACHABLE':
      return 'The server cannot be reached'
    case 'NOT_ROUTEMETER':
      return 'This is not a Routemeter server'
    case 'DOWNLOAD_FAILED':
      return 'The download failed'
    case 'CANCELLED':
      return 'The download was cancelled'
    case 'INTERNAL':
      return 'Something went wrong'
  }
}
