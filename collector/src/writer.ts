/**
 * The collector's writer, for programs that produce a metrics file without
 * serving requests: the desktop app's demo database, the traffic generator,
 * benchmarks. Apps use `bind` instead.
 */
export { MetricsStore, WRITE_BUSY_TIMEOUT_MS } from './store.js'
export type { EndpointState, PendingRequest, StoredEndpoint } from './store.js'
export {
  rebuildRollups,
  rollUpAfter,
  rollUpRequests,
  rollupWatermark,
  userRollupWatermark,
  USER_ROLLUP_ROWS,
} from './rollup-store.js'
export { rollupTablesSql } from './schema/migrations/0003-rollups.js'
export { ipRollupTableSql } from './schema/migrations/0004-ip-rollups.js'
