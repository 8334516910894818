import type { MigrationDb } from '../migrate.js'

/**
 * Releases: the git tags that point at a version's commit, as the collector
 * found them when it started (a JSON array; NULL: none known).
 */
export function up(db: MigrationDb): void {
  db.exec('ALTER TABLE version ADD COLUMN tags TEXT')
}
