/**
 * One entry point for a transport: takes a method name and an argument as
 * they arrived (from IPC or HTTP), validates both, calls the API, and turns
 * any failure into an ApiError. Errors travel as data because Electron's
 * IPC keeps only the message of a thrown error.
 */
import type { ApiError, ApiMethod, DashboardApi } from './contract.js'
import { badArgument, toApiError } from './errors.js'
import { API_METHODS, isApiMethod, validateArgs } from './validate.js'

export type ApiResponse<T = unknown> = { ok: true; value: T } | { ok: false; error: ApiError }

export async function callApi(
  api: DashboardApi,
  method: unknown,
  args: unknown,
): Promise<ApiResponse> {
  try {
    if (!isApiMethod(method)) {
      throw badArgument(
        `unknown API method ${JSON.stringify(method)}; known: ${API_METHODS.join(', ')}`,
      )
    }
    const valid = validateArgs(method, args)
    const call = api[method] as (args: unknown) => Promise<unknown>
    return { ok: true, value: await call.call(api, valid) }
  } catch (error) {
    return { ok: false, error: toApiError(error) }
  }
}

export type { ApiMethod }
