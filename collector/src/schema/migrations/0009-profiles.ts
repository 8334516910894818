import type { MigrationDb } from '../migrate.js'

/**
 * Level 3: per endpoint, hour, version and node, the CPU samples of the
 * endpoint's requests as one merged profile (folded stacks, deflated JSON:
 * collector/src/profiles/folded.ts), and an outlier's own samples (a request
 * of an endpoint at level 3). Retention's `profiles` bounds the table.
 */
export function up(db: MigrationDb): void {
  db.exec(`
    CREATE TABLE profile (
      endpoint_id INTEGER NOT NULL,
      hour        INTEGER NOT NULL,
      version_id  INTEGER NOT NULL,
      node_id     INTEGER NOT NULL,
      samples     INTEGER NOT NULL,
      interval_us INTEGER NOT NULL,
      tree        BLOB    NOT NULL,
      PRIMARY KEY (endpoint_id, hour, version_id, node_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX profile_hour ON profile (hour);
    ALTER TABLE outlier ADD COLUMN profile BLOB;
  `)
}
