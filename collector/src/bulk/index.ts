/**
 * Internal to the traffic generator, not an API for apps (subpath
 * `routemeter/internal/bulk`, which may change without notice): requests
 * made and counted into rollups on one thread, inserted from another.
 */
export { BulkInserter, BulkWriter } from './bulk-writer.js'
export type { BulkBatch, BulkOptions } from './bulk-writer.js'
export { RollupCounter, writeCountedRollups } from '../store/rollups/index.js'
export type { CountedRollups } from '../store/rollups/index.js'
