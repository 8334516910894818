/**
 * The rollup tables' SQL: requests pre-aggregated per endpoint and hour
 * (rollup_hour, rollup_status), per endpoint and day (rollup_day) and per
 * endpoint, day and user (rollup_user_day), so that the desktop app's views
 * read thousands of rows instead of millions. SCHEMA.md describes them.
 *
 * Rollups follow the request table by id: meta 'rollups_through_request'
 * holds the largest request id already counted. The collector's writer calls
 * rollUpRequests() in the transaction that inserts a batch, so the rollups
 * never lag the requests a reader can see; a program that inserts requests
 * some other way (merging files, pulling a server's new rows) calls it too.
 */
export {
  type RollupDb,
  ALL_ENDPOINTS,
  ROLLUP_WATERMARK_KEY,
  USER_ROLLUP_WATERMARK_KEY,
  USER_ROLLUP_ROWS,
} from './common.js'
export { histogramsOfEntries } from './aggregate-list.js'
export { RollupColumns } from './columns.js'
export { forgetRollupStatements, type CountedChunk } from './statements.js'
export {
  rollupWatermark,
  MAX_DURATION_US,
  invalidRequestRows,
  rollUpAfter,
  histogramMergeFunction,
  userRollupWatermark,
  rollUpRequests,
  rollUpUnstored,
  writePendingClientRollups,
  backfillIpRollups,
  rebuildRollups,
} from './passes.js'
export {
  type CountedRollups,
  RollupCounter,
  writeCountedRollups,
  CLIENT_ROLLUP_TABLES,
  writeClientRollupRows,
  withoutClientRollupRows,
} from './counted.js'
