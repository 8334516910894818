import type Database from 'better-sqlite3'
import { APPLICATION_ID, SCHEMA_VERSION } from './types.js'
import { up as initial } from './migrations/0001-initial.js'
import { up as nodes } from './migrations/0002-nodes.js'
import { up as rollups } from './migrations/0003-rollups.js'
import { up as ipRollups } from './migrations/0004-ip-rollups.js'
import { up as requestSpans } from './migrations/0005-request-spans.js'
import { up as outliers } from './migrations/0006-outliers.js'
import { up as retention } from './migrations/0007-retention.js'
import { up as releaseTags } from './migrations/0008-release-tags.js'
import { up as profiles } from './migrations/0009-profiles.js'

/** The part of a better-sqlite3 connection that migrations use. */
export type MigrationDb = Pick<
  Database.Database,
  'exec' | 'pragma' | 'prepare' | 'transaction' | 'function'
>

/** Ordered migrations; step i takes a file from user_version i to i + 1. */
const MIGRATIONS: ReadonlyArray<(db: MigrationDb) => void> = [
  initial,
  nodes,
  rollups,
  ipRollups,
  requestSpans,
  outliers,
  retention,
  releaseTags,
  profiles,
]

if (MIGRATIONS.length !== SCHEMA_VERSION) {
  throw new Error('routemeter: SCHEMA_VERSION does not match the list of migrations')
}

/** The file was written by a newer Routemeter than this one. */
export class SchemaTooNewError extends Error {
  override readonly name = 'SchemaTooNewError'
  constructor(
    readonly fileVersion: number,
    readonly knownVersion: number = SCHEMA_VERSION,
  ) {
    super(
      `this metrics file has schema version ${fileVersion}, written by a newer Routemeter; ` +
        `this one knows up to version ${knownVersion}: upgrade Routemeter to read it`,
    )
  }
}

/** The file is an SQLite database of another application. */
export class NotRoutemeterFileError extends Error {
  override readonly name = 'NotRoutemeterFileError'
  constructor(readonly applicationId: number) {
    super(
      `this SQLite file belongs to another application (application_id ${applicationId}), ` +
        'not Routemeter',
    )
  }
}

/**
 * Checks that a file can be read by this code, without changing it.
 * Returns the file's schema version (0 for an empty, new file).
 */
export function checkSchema(db: MigrationDb): number {
  const applicationId = Number(db.pragma('application_id', { simple: true }))
  const version = Number(db.pragma('user_version', { simple: true }))
  if (applicationId !== APPLICATION_ID) {
    const { tables } = db.prepare('SELECT count(*) AS tables FROM sqlite_schema').get() as {
      tables: number
    }
    // A brand-new file has neither an application id nor any table.
    if (applicationId !== 0 || version !== 0 || tables !== 0) {
      throw new NotRoutemeterFileError(applicationId)
    }
  }
  if (version > SCHEMA_VERSION) throw new SchemaTooNewError(version)
  return version
}

/**
 * Takes the file to the latest schema. All pending steps run in one
 * IMMEDIATE transaction that ends by setting user_version, so several
 * processes starting at once on a new file cannot race: the first one
 * migrates, the others wait on the lock and then find nothing to do.
 */
export function migrate(db: MigrationDb, now: number = Date.now()): number {
  db.exec('BEGIN IMMEDIATE')
  try {
    const from = checkSchema(db)
    for (let step = from; step < SCHEMA_VERSION; step++) MIGRATIONS[step]!(db)
    if (from === 0) {
      db.pragma(`application_id = ${APPLICATION_ID}`, { simple: true })
      const meta = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)')
      meta.run('created_at', String(now))
      meta.run('created_by', 'routemeter')
    }
    if (from !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`, { simple: true })
    db.exec('COMMIT')
    return from
  } catch (error) {
    db.exec('ROLLBACK')
    throw error
  }
}
