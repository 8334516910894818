/**
 * `npm run generate -- --out big.db --requests 10000000 --days 365`: writes a
 * metrics file of realistic traffic through the collector's writer. See
 * `--help` for the options; the same options and --seed give the same rows.
 */
import { existsSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { generateMetricsFile, MAX_ENDPOINTS } from '../src-main/services/generator/index.js'
import { createProgress, formatCount } from '../src-main/services/generator/progress.js'

const USAGE = `usage: npm run generate -- --out FILE [options]

  --out FILE          the metrics file to write (refused if it exists, unless --force)
  --requests N        request rows to write (10000000, 10M, 1e7); default 1M
  --days N            length of the period in days; default 30
  --end TIME          end of the period (ISO date or ms since the epoch); default this hour
  --endpoints N       endpoints, 1-${MAX_ENDPOINTS}; default 30 (plus the unmatched one and /health)
  --users N           users (customers and integrations); default 100
  --versions N        versions (releases spread over the period); default one per ~4 days
  --error-rate R      share of 4xx and 5xx answers, 0-0.5; default 0.03
  --seed N            seed of the random generator; default 1
  --batch N           rows per write transaction; default 20000
  --force             replace FILE if it exists
  --json              print the summary as JSON on stdout
  --quiet             no progress bar`

/** 10000000, 10_000_000, 10M, 2.5k, 1e7 */
function count(value: string, name: string): number {
  const match = /^([\d_.e+]+)([kKmM]?)$/.exec(value.trim())
  const n = match === null ? Number.NaN : Number(match[1]!.replaceAll('_', ''))
  const scale =
    match?.[2]?.toLowerCase() === 'm' ? 1e6 : match?.[2]?.toLowerCase() === 'k' ? 1e3 : 1
  const result = Math.round(n * scale)
  if (!Number.isFinite(result) || result < 0)
    throw new Error(`--${name} must be a count, got "${value}"`)
  return result
}

function number(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got "${value}"`)
  return n
}

function time(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = /^\d+$/.test(value) ? Number(value) : Date.parse(value)
  if (!Number.isFinite(n)) throw new Error(`--end must be an ISO date or ms, got "${value}"`)
  return n
}

function main(): void {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      requests: { type: 'string' },
      days: { type: 'string' },
      end: { type: 'string' },
      endpoints: { type: 'string' },
      users: { type: 'string' },
      versions: { type: 'string' },
      'error-rate': { type: 'string' },
      seed: { type: 'string' },
      batch: { type: 'string' },
      force: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(USAGE)
    return
  }
  if (values.out === undefined) throw new Error('--out is required')
  // npm runs scripts from the package folder: a relative path means where the user typed it.
  const cwd = process.env.INIT_CWD ?? process.cwd()
  const out = isAbsolute(values.out) ? values.out : resolve(cwd, values.out)
  if (existsSync(out) && !values.force) throw new Error(`${out} exists; add --force to replace it`)
  const requests = values.requests === undefined ? 1_000_000 : count(values.requests, 'requests')
  const progress = values.quiet
    ? undefined
    : createProgress(requests, { label: 'generate ', unit: 'rows' })
  const summary = generateMetricsFile(out, {
    requests,
    days: number(values.days, 'days'),
    end: time(values.end),
    endpoints: number(values.endpoints, 'endpoints'),
    users: number(values.users, 'users'),
    versions: number(values.versions, 'versions'),
    errorRate: number(values['error-rate'], 'error-rate'),
    seed: number(values.seed, 'seed'),
    batchSize: values.batch === undefined ? undefined : count(values.batch, 'batch'),
    overwrite: values.force,
    onProgress: (done) => progress?.update(done),
  })
  progress?.finish()
  if (values.json) {
    console.log(JSON.stringify(summary, null, 2))
    return
  }
  const seconds = summary.elapsedMs / 1000
  const share = (ms: number): string => `${((100 * ms) / summary.elapsedMs).toFixed(0)}%`
  const day = (ms: number): string => new Date(ms).toISOString().slice(0, 16).replace('T', ' ')
  const changes = summary.versions.flatMap((v) =>
    v.effects
      .filter((x) => x.factor !== 1)
      .map((x) => `${v.name}: ${x.endpoint} x${x.factor.toFixed(2)} (${x.note})`),
  )
  console.log(
    [
      `wrote ${summary.requests.toLocaleString('en')} requests to ${summary.path}`,
      `  ${(summary.fileBytes / 2 ** 20).toFixed(1)} MiB, ${(summary.fileBytes / Math.max(1, summary.requests)).toFixed(1)} bytes/request`,
      `  ${seconds.toFixed(1)} s: ${formatCount(summary.requests / seconds)} rows/s` +
        ` (writer ${share(summary.writeMs)}, ${formatCount(summary.requests / (summary.writeMs / 1000))} rows/s;` +
        ` making rows ${share(summary.generateMs)}, ${formatCount(summary.requests / (summary.generateMs / 1000))} rows/s)`,
      `  ${day(summary.from)} to ${day(summary.to)} UTC, ${summary.endpoints} endpoints, ${summary.users} users, ${summary.versions.length} versions`,
      ...(changes.length > 0
        ? ['  releases that changed a duration:', ...changes.slice(0, 8).map((c) => `    ${c}`)]
        : []),
      ...(changes.length > 8
        ? [`    … and ${changes.length - 8} more (--json lists them all)`]
        : []),
    ].join('\n'),
  )
}

try {
  main()
} catch (error) {
  console.error(`generate: ${(error as Error).message}\n\n${USAGE}`)
  process.exitCode = 2
}
