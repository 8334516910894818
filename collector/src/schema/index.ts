export * from './types.js'
export { checkSchema, migrate, SchemaTooNewError, NotRoutemeterFileError } from './migrate.js'
export type { MigrationDb } from './migrate.js'
export * from './rollup.js'
export {
  KEPT_SINCE_KEYS,
  MIN_FILE_SIZE_BYTES,
  MIN_RETENTION_MS,
  parsePolicy,
  POLICY_KEY,
} from '../retention/policy.js'
