export * from './types.js'
export { checkSchema, migrate, SchemaTooNewError, NotRoutemeterFileError } from './migrate.js'
export type { MigrationDb } from './migrate.js'
export * from './rollup.js'
