import type { MigrationDb } from '../migrate.js'

/**
 * Nodes: the machine (host name, or the collector's `node` option) each request
 * was served on, so that files of a service deployed on several nodes can be
 * told apart and merged. Requests written before this step have no node (NULL).
 */
export function up(db: MigrationDb): void {
  db.exec(`
    CREATE TABLE node (
      id         INTEGER PRIMARY KEY,
      name       TEXT    NOT NULL UNIQUE,
      first_seen INTEGER NOT NULL
    ) STRICT;

    ALTER TABLE request ADD COLUMN node_id INTEGER REFERENCES node (id);
  `)
}
