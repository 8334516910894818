import type { MigrationDb } from '../migrate.js'
import { backfillIpRollups } from '../../store/rollups/index.js'

/**
 * Requests per client IP, endpoint and UTC day (rollup_ip_day), so that the
 * per-IP breakdown reads rollups as the per-user one does instead of every
 * request of the endpoint in range. Counted with the users, at the same watermark: the backfill
 * takes the requests the users' rollups already count.
 */
export function up(db: MigrationDb): void {
  db.exec(ipRollupTableSql('main'))
  backfillIpRollups(db)
}

/** The table, in the file or in a connection's TEMP schema (files older than schema 3). */
export function ipRollupTableSql(schema: 'main' | 'temp'): string {
  return `
    CREATE TABLE ${schema}.rollup_ip_day (
      endpoint_id  INTEGER NOT NULL,
      day          INTEGER NOT NULL,
      client_ip_id INTEGER NOT NULL,
      version_id   INTEGER NOT NULL,
      node_id      INTEGER NOT NULL,
      requests     INTEGER NOT NULL,
      sum_us       INTEGER NOT NULL,
      min_us       INTEGER NOT NULL,
      max_us       INTEGER NOT NULL,
      histogram    BLOB    NOT NULL,
      PRIMARY KEY (endpoint_id, day, client_ip_id, version_id, node_id)
    ) STRICT, WITHOUT ROWID;
  `
}
