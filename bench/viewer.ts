/**
 * The viewer: every view's data on generated files of 1 million and 10
 * million requests, each file in a fresh process (first open, first call,
 * warm calls), the file's bytes per request and the process's memory.
 *
 * Generated files are kept in test-results/bench-files, named after a hash
 * of the generator's and the writer's sources, so a later run reuses them
 * until either changes.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { generateMetricsFile } from '../src-main/services/generator/index.js'
import { createProgress } from '../src-main/services/generator/progress.js'
import { ROOT } from './lib.js'
import type { ViewerChildResult } from './viewer-child.js'

export interface ViewerOptions {
  sizes: number[]
  days: number
  end: number
  warmRuns: number
  log: (line: string) => void
}

export interface ViewerFigures extends ViewerChildResult {
  requests: number
  file: string
  /** seconds to generate the file in this run; null when it was reused */
  generateSeconds: number | null
  bytesPerRequest: number
}

function sourcesHash(): string {
  const hash = createHash('sha1')
  const add = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) add(path)
      else if (entry.name.endsWith('.ts')) hash.update(entry.name).update(readFileSync(path))
    }
  }
  add(join(ROOT, 'src-main', 'services', 'generator'))
  add(join(ROOT, 'collector', 'src'))
  return hash.digest('hex').slice(0, 10)
}

/** A generated file of `requests` requests, made now or reused. */
function benchFile(
  requests: number,
  options: ViewerOptions,
): { path: string; generateSeconds: number | null } {
  const dir = join(ROOT, 'test-results', 'bench-files')
  mkdirSync(dir, { recursive: true })
  const hash = sourcesHash()
  const name = `gen-${hash}-${requests}-${options.days}d.db`
  const path = join(dir, name)
  if (existsSync(path)) return { path, generateSeconds: null }
  // Files of older sources are of no use any more.
  for (const old of readdirSync(dir)) {
    if (old.startsWith('gen-') && !old.startsWith(`gen-${hash}-`)) rmSync(join(dir, old))
  }
  const partial = `${path}.partial`
  const progress = createProgress(requests, { label: `  generate ${name} `, unit: 'rows' })
  const summary = generateMetricsFile(partial, {
    requests,
    days: options.days,
    end: options.end,
    overwrite: true,
    onProgress: (done) => progress.update(done),
  })
  progress.finish()
  renameSync(partial, path)
  return { path, generateSeconds: summary.elapsedMs / 1000 }
}

/** Times every view on `path` in a fresh process (bench/viewer-child.ts), ranges ending at `end`. */
export function runChild(
  path: string,
  options: Pick<ViewerOptions, 'end' | 'warmRuns'>,
): Promise<ViewerChildResult> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'bench', 'viewer-child.ts'),
      path,
      String(options.end),
      String(options.warmRuns),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
  return new Promise((resolve, reject) => {
    child.once('close', (code) => {
      if (code !== 0) reject(new Error(`viewer-child failed (${code}): ${err}`))
      else resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as ViewerChildResult)
    })
  })
}

export async function runViewer(options: ViewerOptions): Promise<ViewerFigures[]> {
  const figures: ViewerFigures[] = []
  for (const requests of options.sizes) {
    const { path, generateSeconds } = benchFile(requests, options)
    options.log(
      `  ${requests.toLocaleString('en')} requests: ${generateSeconds === null ? 'reused' : `generated in ${generateSeconds.toFixed(1)} s`}; timing the views…`,
    )
    const result = await runChild(path, options)
    figures.push({
      ...result,
      requests,
      file: path,
      generateSeconds,
      bytesPerRequest: result.sizeBytes / Math.max(1, result.requestCount),
    })
  }
  return figures
}
