import type { MigrationDb } from '../migrate.js'

/**
 * Outliers (monitoring level 2): one row per request that ran much longer
 * than its endpoint's recent requests, with the context taken while it ran.
 * The columns the views filter and sort on are columns; what is only shown
 * for one outlier (headers, operations, process state) is one JSON document.
 */
export function up(db: MigrationDb): void {
  db.exec(`
    CREATE TABLE outlier (
      id            INTEGER PRIMARY KEY,
      endpoint_id   INTEGER NOT NULL REFERENCES endpoint (id),
      time          INTEGER NOT NULL,
      duration_us   INTEGER NOT NULL,
      threshold_us  INTEGER NOT NULL,
      caught_us     INTEGER NOT NULL,
      status        INTEGER NOT NULL,
      version_id    INTEGER NOT NULL REFERENCES version (id),
      node_id       INTEGER REFERENCES node (id),
      user_group_id INTEGER REFERENCES user_group (id),
      client_ip_id  INTEGER REFERENCES client_ip (id),
      method        TEXT    NOT NULL,
      url           TEXT    NOT NULL,
      cause         TEXT    NOT NULL,
      cause_detail  TEXT    NOT NULL,
      context       TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX outlier_endpoint_time ON outlier (endpoint_id, time);
    CREATE INDEX outlier_time ON outlier (time);
  `)
}
