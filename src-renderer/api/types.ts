/** The renderer sees the main process only through the contract's types. */
export type * from '../../src-main/api/contract'
export { API_ERROR_CODES, isApiError, WRITE_METHODS } from '../../src-main/api/contract'
