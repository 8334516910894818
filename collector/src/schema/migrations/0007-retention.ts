import type { MigrationDb } from '../migrate.js'

/**
 * Retention and sampling: a request row may stand for several requests (the
 * ones sampled away beside it), counted in `weight`. Existing rows stand for
 * themselves. The policy and the pruning's progress live in `meta`.
 */
export function up(db: MigrationDb): void {
  db.exec('ALTER TABLE request ADD COLUMN weight INTEGER NOT NULL DEFAULT 1')
}
