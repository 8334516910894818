#!/usr/bin/env node
/*
 * `routemeter <command>`: what a maintainer or a deployment pipeline runs on a
 * metrics file. `report` compares two releases per endpoint and can fail a
 * pipeline on a regression; `vacuum` converts a file created before
 * retention existed so that pruned rows give their space back to the disk.
 */
import Database from 'better-sqlite3'
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { createGunzip } from 'node:zlib'
import {
  compareReleases,
  readVersions,
  releases,
  type Comparison,
  type Side,
} from './compare/releases.js'
import { checkSchema } from './schema/migrate.js'

const USAGE = `usage:
  routemeter report <metrics.db | app URL> [--baseline SIDE] [--candidate SIDE] [--endpoint "GET /route"]...
                    [--min-requests N] [--min-change PCT] [--test mood|mann-whitney] [--json]
                    [--fail-on-regression PCT]
  routemeter vacuum <metrics.db>

report   compares two releases per endpoint: requests, median, p95 and 5xx rate before and
         after, and a verdict (slower, faster, no change, too few requests) from Mood's
         median test (--test mann-whitney: the Mann-Whitney U test) with Holm's correction
         over the endpoints; exact while every request is still stored, else from the
         hourly histograms (quantiles within 4.43%). A SIDE is versions or tags
         separated by commas (v1.4.0,v1.4.1), or a date range (2026-12-01..2026-12-07).
         Default: the latest release against the one before (tagged versions if any,
         else versions in the order they appeared). --fail-on-regression PCT exits 1
         when an endpoint is significantly slower by more than PCT %. An app's URL
         (https://api.example.com) pulls a copy of its file through its remote access
         (the token from env ROUTEMETER_TOKEN; --prefix if not /routemeter).
vacuum   rewrites the file so that the space of pruned rows goes back to the disk
         (incremental vacuum); files created before retention need it once. The app's
         writes wait meanwhile (they are buffered).

exit codes: 0 done, 1 a regression past --fail-on-regression, 2 bad arguments or file`

class UsageError extends Error {}

function sizeOf(path: string): number {
  let bytes = 0
  for (const suffix of ['', '-wal'])
    bytes += statSync(path + suffix, { throwIfNoEntry: false })?.size ?? 0
  return bytes
}

function openFile(path: string, readonly: boolean): Database.Database {
  const db = new Database(path, { fileMustExist: true, readonly, timeout: 10_000 })
  try {
    db.transaction(() => checkSchema(db))()
  } catch (error) {
    db.close()
    throw error
  }
  return db
}

function vacuum(path: string): void {
  const db = openFile(path, false)
  try {
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

/** A side as typed: `a,b` (versions or tags) or `YYYY-MM-DD..YYYY-MM-DD` (UTC days, the end included). */
function side(text: string, name: string): Side {
  const range = /^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$/.exec(text)
  if (range !== null) {
    const from = Date.parse(`${range[1]}T00:00:00Z`)
    const to = Date.parse(`${range[2]}T00:00:00Z`) + 86_400_000
    if (!(from < to)) throw new UsageError(`--${name}: the range ${text} ends before it starts`)
    return { from, to }
  }
  const versions = text
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '')
  if (versions.length === 0) throw new UsageError(`--${name}: give versions, tags or a date range`)
  return { versions }
}

/** The latest release and the one before (see `releases`). */
function defaultSides(db: Database.Database): [Side, Side] {
  const pool = releases(readVersions(db))
  if (pool.length < 2) throw new UsageError('the file has fewer than two versions: name the sides')
  return [{ versions: [pool[pool.length - 2]!.name] }, { versions: [pool[pool.length - 1]!.name] }]
}

function number(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a number, got ${value}`)
  return n
}

function describeSide(s: Comparison['baseline']): string {
  if (s.from !== undefined && s.to !== undefined) {
    const day = (t: number) => new Date(t).toISOString().slice(0, 10)
    return `${day(s.from)}..${day(s.to - 1)}`
  }
  return s.versionNames.map((v) => (/^[0-9a-f]{40}$/.test(v) ? v.slice(0, 7) : v)).join(',')
}

function table(comparison: Comparison): string {
  const ms = (us: number | null) => (us === null ? '-' : (us / 1000).toFixed(1))
  const pct = (p: number | null) => (p === null ? '-' : `${p > 0 ? '+' : ''}${p.toFixed(1)}%`)
  const rate = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(1)}%`)
  const rows = comparison.endpoints.map((e) => [
    `${e.method} ${e.route}`,
    e.verdict,
    `${e.baseline.requests} / ${e.candidate.requests}`,
    `${ms(e.baseline.medianUs)} -> ${ms(e.candidate.medianUs)}`,
    pct(e.medianChangePercent),
    `${ms(e.baseline.p95Us)} -> ${ms(e.candidate.p95Us)}`,
    `${rate(e.baseline.errorRate)} -> ${rate(e.candidate.errorRate)}`,
    e.adjustedPValue === null ? '-' : e.adjustedPValue.toExponential(1),
  ])
  const header = [
    'endpoint',
    'verdict',
    'requests',
    'median ms',
    'change',
    'p95 ms',
    '5xx',
    'p (Holm)',
  ]
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')
  return [
    `baseline ${describeSide(comparison.baseline)}, candidate ${describeSide(comparison.candidate)}`,
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    comparison.method,
  ].join('\n')
}

/**
 * A copy of an app's metrics file, through its remote access
 * (`GET {prefix}/snapshot`, a gzip of the file, behind the bearer token).
 */
async function pull(url: string, prefix: string): Promise<{ path: string; cleanup: () => void }> {
  const token = process.env.ROUTEMETER_TOKEN
  if (token === undefined || token === '') {
    throw new UsageError("set ROUTEMETER_TOKEN to the token of the app's remote access")
  }
  const address = new URL(`${prefix.replace(/\/$/, '')}/snapshot`, url)
  let response: Response
  try {
    response = await fetch(address, { headers: { Authorization: `Bearer ${token}` } })
  } catch (error) {
    throw new Error(`cannot reach ${address.origin}: ${(error as Error).message}`, { cause: error })
  }
  if (response.status === 401) throw new Error(`${address.origin} refused the token`)
  if (!response.ok || response.body === null) {
    throw new Error(
      `${address.href} answered ${response.status}: is remote access on, under ${prefix}?`,
    )
  }
  const dir = mkdtempSync(join(tmpdir(), 'routemeter-report-'))
  const cleanup = () => rmSync(dir, { recursive: true, force: true })
  const path = join(dir, 'metrics.db')
  try {
    await pipeline(
      Readable.fromWeb(response.body as never),
      createGunzip(),
      createWriteStream(path),
    )
  } catch (error) {
    cleanup()
    throw error
  }
  return { path, cleanup }
}

async function report(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      prefix: { type: 'string', default: '/routemeter' },
      baseline: { type: 'string' },
      candidate: { type: 'string' },
      endpoint: { type: 'string', multiple: true },
      'min-requests': { type: 'string' },
      'min-change': { type: 'string' },
      test: { type: 'string' },
      json: { type: 'boolean', default: false },
      'fail-on-regression': { type: 'string' },
    },
  })
  if (positionals.length !== 1) throw new UsageError('report takes one metrics file')
  const failOn = number(values['fail-on-regression'], 'fail-on-regression')
  const test = values.test
  if (test !== undefined && test !== 'mood' && test !== 'mann-whitney') {
    throw new UsageError(`--test must be mood or mann-whitney, got ${test}`)
  }
  const source = positionals[0]!
  const copy = /^https?:\/\//.test(source) ? await pull(source, values.prefix) : undefined
  const db = openFile(copy?.path ?? source, true)
  try {
    const defaults = values.baseline === undefined || values.candidate === undefined
    const [baseline, candidate] = defaults ? defaultSides(db) : [undefined, undefined]
    let comparison: Comparison
    try {
      comparison = compareReleases(db, {
        baseline: values.baseline !== undefined ? side(values.baseline, 'baseline') : baseline!,
        candidate:
          values.candidate !== undefined ? side(values.candidate, 'candidate') : candidate!,
        ...(values.endpoint === undefined ? {} : { endpoints: values.endpoint }),
        ...(values['min-requests'] === undefined
          ? {}
          : { minRequests: number(values['min-requests'], 'min-requests')! }),
        ...(values['min-change'] === undefined
          ? {}
          : { minChangePercent: number(values['min-change'], 'min-change')! }),
        ...(test === undefined ? {} : { test }),
      })
    } catch (error) {
      if (error instanceof TypeError)
        throw new UsageError(error.message.replace(/^routemeter: /, ''))
      throw error
    }
    console.log(values.json ? JSON.stringify(comparison, null, 2) : table(comparison))
    if (failOn === undefined) return 0
    const regressions = comparison.endpoints.filter(
      (e) => e.verdict === 'slower' && (e.medianChangePercent ?? 0) > failOn,
    )
    if (regressions.length === 0) return 0
    console.error(
      `regression: ${regressions.map((e) => `${e.method} ${e.route} ${(e.medianChangePercent ?? 0).toFixed(1)}% slower`).join('; ')}`,
    )
    return 1
  } finally {
    db.close()
    copy?.cleanup()
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h') {
    console.log(USAGE)
    return 0
  }
  try {
    if (command === 'report') return await report(rest)
    if (command === 'vacuum' && rest.length === 1) {
      vacuum(rest[0]!)
      return 0
    }
    throw new UsageError(`unknown command or arguments: ${argv.join(' ')}`)
  } catch (error) {
    // A bad argument, or a file that cannot be read as a metrics file.
    console.error(`routemeter ${command}: ${(error as Error).message}`)
    if (error instanceof UsageError) console.error(USAGE)
    return 2
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    console.error(`routemeter: ${(error as Error).message}`)
    process.exitCode = 2
  },
)
