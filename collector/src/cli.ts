#!/usr/bin/env node
/*
 * `routemeter <command>`: what a maintainer runs on a metrics file by hand.
 * `vacuum` converts a file created before retention existed so that pruned
 * rows give their space back to the disk (new files are created so).
 */
import Database from 'better-sqlite3'
import { statSync } from 'node:fs'
import { checkSchema } from './schema/migrate.js'

const USAGE = `usage: routemeter vacuum <metrics.db>

  vacuum   rewrites the file so that the space of pruned rows goes back to
           the disk (incremental vacuum); files created by Routemeter 0.1
           before retention need it once. The app's writes wait meanwhile
           (they are buffered).`

function sizeOf(path: string): number {
  let bytes = 0
  for (const suffix of ['', '-wal'])
    bytes += statSync(path + suffix, { throwIfNoEntry: false })?.size ?? 0
  return bytes
}

function vacuum(path: string): void {
  const db = new Database(path, { fileMustExist: true, timeout: 10_000 })
  try {
    db.transaction(() => checkSchema(db))()
    const before = sizeOf(path)
    db.pragma('auto_vacuum = INCREMENTAL')
    db.exec('VACUUM')
    db.pragma('wal_checkpoint(TRUNCATE)')
    const mode = Number(db.pragma('auto_vacuum', { simple: true }))
    const mb = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MB`
    console.log(
      `${path}: ${mb(before)} -> ${mb(sizeOf(path))}; pruned rows now free their space` +
        (mode === 2 ? '' : ' (auto_vacuum did not change: is another program holding the file?)'),
    )
  } finally {
    db.close()
  }
}

const [command, file, ...rest] = process.argv.slice(2)
if (command === 'vacuum' && file !== undefined && rest.length === 0) {
  try {
    vacuum(file)
  } catch (error) {
    console.error(`routemeter vacuum: ${(error as Error).message}`)
    process.exitCode = 1
  }
} else {
  console.error(USAGE)
  process.exitCode = command === undefined || command === '--help' ? 0 : 2
}
