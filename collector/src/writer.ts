/**
 * The collector's writer, for programs that produce a metrics file without
 * serving requests: the desktop app's demo database, the traffic generator,
 * benchmarks. Apps use `bind` instead. (The generator's bulk writer is
 * `routemeter/internal/bulk`.)
 */
export { MetricsStore, openForWriting, WRITE_BUSY_TIMEOUT_MS } from './store/metrics-store.js'
export type { RequestColumns } from './store/request-insert.js'
export type { EndpointState, PendingRequest, StoredEndpoint } from './store/metrics-store.js'
export {
  rebuildRollups,
  RollupColumns,
  rollUpAfter,
  ROLLUP_WATERMARK_KEY,
  USER_ROLLUP_WATERMARK_KEY,
  histogramMergeFunction,
  rollUpRequests,
  rollupWatermark,
  userRollupWatermark,
  USER_ROLLUP_ROWS,
} from './store/rollups/index.js'
export { rollupTablesSql } from './schema/migrations/0003-rollups.js'
export { ipRollupTableSql } from './schema/migrations/0004-ip-rollups.js'
