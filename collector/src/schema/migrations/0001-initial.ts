import type { MigrationDb } from '../migrate.js'

/** The first schema: endpoints, versions, users/groups, client IPs and requests. */
export function up(db: MigrationDb): void {
  db.exec(`
    CREATE TABLE meta (
      key   TEXT PRIMARY KEY,
      value TEXT NOT NULL
    ) STRICT;

    CREATE TABLE endpoint (
      id             INTEGER PRIMARY KEY,
      method         TEXT    NOT NULL,
      route          TEXT    NOT NULL,
      monitor_level  INTEGER NOT NULL DEFAULT 1 CHECK (monitor_level BETWEEN 0 AND 3),
      first_seen     INTEGER NOT NULL,
      last_requested INTEGER,
      UNIQUE (method, route)
    ) STRICT;

    CREATE TABLE version (
      id         INTEGER PRIMARY KEY,
      name       TEXT    NOT NULL UNIQUE,
      source     TEXT    NOT NULL CHECK (source IN ('option', 'git', 'package', 'unknown')),
      first_seen INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE user_group (
      id   INTEGER PRIMARY KEY,
      name TEXT    NOT NULL UNIQUE
    ) STRICT;

    CREATE TABLE client_ip (
      id      INTEGER PRIMARY KEY,
      address TEXT    NOT NULL UNIQUE
    ) STRICT;

    CREATE TABLE request (
      id            INTEGER PRIMARY KEY,
      endpoint_id   INTEGER NOT NULL REFERENCES endpoint (id),
      time          INTEGER NOT NULL,
      duration_us   INTEGER NOT NULL,
      status        INTEGER NOT NULL,
      version_id    INTEGER NOT NULL REFERENCES version (id),
      user_group_id INTEGER REFERENCES user_group (id),
      client_ip_id  INTEGER REFERENCES client_ip (id),
      aborted       INTEGER NOT NULL DEFAULT 0 CHECK (aborted IN (0, 1))
    ) STRICT;

    -- The views read a time range per endpoint, across endpoints, per version and per user.
    CREATE INDEX request_endpoint_time ON request (endpoint_id, time);
    CREATE INDEX request_time ON request (time);
    CREATE INDEX request_version_endpoint ON request (version_id, endpoint_id);
    CREATE INDEX request_group_endpoint ON request (user_group_id, endpoint_id);
  `)
}
