import type { MigrationDb } from '../migrate.js'
import { rollUpRequests } from '../../store/rollups/index.js'

/**
 * Rollups: requests pre-aggregated per endpoint and hour, day and user, kept
 * by the writer in the transaction that inserts them, so that the views read
 * thousands of rows instead of millions. Backfills them from the
 * requests already in the file. The views no longer scan requests by time,
 * version or user: of the four indexes only (endpoint_id, time) stays, for
 * the latest errors, the IP breakdown and the few minutes at a range's ends.
 * node_id and user_group_id are 0 in rollups where the request has none.
 */
export function up(db: MigrationDb): void {
  db.exec(`
    ${rollupTablesSql('main')}

    DROP INDEX IF EXISTS request_time;
    DROP INDEX IF EXISTS request_version_endpoint;
    DROP INDEX IF EXISTS request_group_endpoint;
  `)
  rollUpRequests(db, 0, { users: 'now' })
}

/**
 * The rollup tables, in the file (`main`) or in a connection's TEMP schema:
 * the desktop app builds them there for files older than schema 3, which it
 * reads without changing them.
 */
export function rollupTablesSql(schema: 'main' | 'temp'): string {
  return `
    CREATE TABLE rollup_hour (
      endpoint_id INTEGER NOT NULL,
      hour        INTEGER NOT NULL,
      version_id  INTEGER NOT NULL,
      node_id     INTEGER NOT NULL,
      requests    INTEGER NOT NULL,
      errors_4xx  INTEGER NOT NULL,
      errors_5xx  INTEGER NOT NULL,
      sum_us      INTEGER NOT NULL,
      min_us      INTEGER NOT NULL,
      max_us      INTEGER NOT NULL,
      histogram   BLOB    NOT NULL,
      PRIMARY KEY (endpoint_id, hour, version_id, node_id)
    ) STRICT, WITHOUT ROWID;

    -- Requests per hour without the histograms: what utilization and the hour heatmap sum.
    CREATE INDEX rollup_hour_requests ON rollup_hour (endpoint_id, hour, node_id, requests);

    CREATE TABLE rollup_day (
      endpoint_id INTEGER NOT NULL,
      day         INTEGER NOT NULL,
      version_id  INTEGER NOT NULL,
      node_id     INTEGER NOT NULL,
      requests    INTEGER NOT NULL,
      errors_4xx  INTEGER NOT NULL,
      errors_5xx  INTEGER NOT NULL,
      sum_us      INTEGER NOT NULL,
      min_us      INTEGER NOT NULL,
      max_us      INTEGER NOT NULL,
      histogram   BLOB    NOT NULL,
      PRIMARY KEY (endpoint_id, day, version_id, node_id)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE rollup_user_day (
      endpoint_id   INTEGER NOT NULL,
      day           INTEGER NOT NULL,
      user_group_id INTEGER NOT NULL,
      version_id    INTEGER NOT NULL,
      node_id       INTEGER NOT NULL,
      requests      INTEGER NOT NULL,
      sum_us        INTEGER NOT NULL,
      min_us        INTEGER NOT NULL,
      max_us        INTEGER NOT NULL,
      histogram     BLOB    NOT NULL,
      PRIMARY KEY (endpoint_id, day, user_group_id, version_id, node_id)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE rollup_status (
      endpoint_id INTEGER NOT NULL,
      hour        INTEGER NOT NULL,
      node_id     INTEGER NOT NULL,
      status      INTEGER NOT NULL,
      requests    INTEGER NOT NULL,
      PRIMARY KEY (endpoint_id, hour, node_id, status)
    ) STRICT, WITHOUT ROWID;
  `
    .replaceAll('CREATE TABLE ', `CREATE TABLE ${schema}.`)
    .replaceAll('CREATE INDEX ', `CREATE INDEX ${schema}.`)
}
