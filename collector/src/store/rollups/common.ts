/**
 * The connection type, keys and constants every part of the rollups shares.
 */
import type Database from 'better-sqlite3'

/** The part of a better-sqlite3 connection that rollups use (migrations pass theirs). */
export type RollupDb = Pick<Database.Database, 'prepare' | 'transaction' | 'exec' | 'function'>

export { ALL_ENDPOINTS } from '../../schema/rollup.js'

/** meta key: requests with an id up to this one are counted in the rollups. */
export const ROLLUP_WATERMARK_KEY = 'rollups_through_request'
/** meta key: requests with an id up to this one are counted in rollup_user_day. */
export const USER_ROLLUP_WATERMARK_KEY = 'user_rollups_through_request'
/**
 * Requests the writer lets wait before it counts them per user and IP (at
 * most this many read raw by the per-client views): each step's upserts are
 * most of the writer's rollup work, so fewer, larger steps.
 */
export const USER_ROLLUP_ROWS = 200_000
