/**
 * `electron-vite build`, and a cheap check of whether out/ is older than the
 * sources (web mode and the end-to-end tests build only when it is).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './electron-env.mjs'

const OUTPUTS = [
  'out/main/index.js',
  'out/main/serve.js',
  'out/preload/index.cjs',
  'out/renderer/index.html',
]
const INPUTS = [
  'src-main',
  'src-renderer',
  'collector/src',
  'electron.vite.config.ts',
  'package.json',
  'tsconfig.web.json',
]

function newestMtime(path) {
  if (!existsSync(path)) return 0
  const stats = statSync(path)
  if (!stats.isDirectory()) return stats.mtimeMs
  let newest = stats.mtimeMs
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)))
  return newest
}

/** Why out/ must be built again, or undefined when it is up to date. */
export function staleReason() {
  const outputs = OUTPUTS.map((file) => join(ROOT, file))
  const missing = outputs.find((file) => !existsSync(file))
  if (missing !== undefined) return `${missing} is missing`
  const built = Math.min(...outputs.map((file) => statSync(file).mtimeMs))
  const changed = INPUTS.find((input) => newestMtime(join(ROOT, input)) > built)
  return changed === undefined ? undefined : `${changed} changed since the last build`
}

/** Runs electron-vite build; throws if it fails. */
export function build({ quiet = false } = {}) {
  const bin = join(ROOT, 'node_modules', 'electron-vite', 'bin', 'electron-vite.js')
  const result = spawnSync(process.execPath, [bin, 'build'], {
    cwd: ROOT,
    stdio: quiet ? 'pipe' : 'inherit',
    encoding: 'utf8',
  })
  if (result.status !== 0) {
    const detail = quiet ? `\n${result.stdout ?? ''}${result.stderr ?? ''}` : ''
    throw new Error(`electron-vite build failed (exit ${result.status})${detail}`)
  }
}

/** Builds unless out/ is up to date; returns whether it built. */
export function ensureBuilt(options = {}) {
  if (staleReason() === undefined) return false
  build(options)
  return true
}
