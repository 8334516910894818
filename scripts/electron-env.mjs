/**
 * Can Electron start on this machine, and where is its better-sqlite3?
 * Shared by `npm start` (scripts/start.mjs), `npm run build:native` and the
 * Electron smoke test. Plain Node, no build step: these run before any build.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(join(ROOT, 'package.json'))

/** The installed electron package's version, e.g. '45.5.0'. */
export function electronVersion() {
  return JSON.parse(readFileSync(require.resolve('electron/package.json'), 'utf8')).version
}

/** NODE_MODULE_VERSION of that Electron (from the package's abi_version file). */
export function electronAbi() {
  const file = join(dirname(require.resolve('electron/package.json')), 'abi_version')
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined
}

/** Where the main process loads better-sqlite3 from (see src-main/shell/startup.ts). */
export function nativeBindingPath(version = electronVersion()) {
  return join(ROOT, 'build', 'native', `electron-${version}`, 'better_sqlite3.node')
}

function lastLine(text) {
  const lines = String(text ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
  return lines.at(-1) ?? ''
}

/**
 * The Electron binary, or why there is none that runs. Resolving
 * `require('electron')` downloads the binary on first use where the
 * internet is reachable; then the binary must really run (as Node) and
 * report the expected version.
 */
export function findElectronBinary({ downloadTimeoutMs = 300_000, runTimeoutMs = 20_000 } = {}) {
  const resolved = spawnSync(
    process.execPath,
    ['-e', "process.stdout.write(require('electron'))"],
    { cwd: ROOT, encoding: 'utf8', timeout: downloadTimeoutMs },
  )
  if (resolved.error?.code === 'ETIMEDOUT') {
    return { reason: 'fetching the Electron binary timed out' }
  }
  if (resolved.status !== 0) {
    const why = /fetch failed|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT/.test(resolved.stderr)
      ? 'the Electron binary is not installed and cannot be downloaded (no internet access)'
      : `the Electron binary is not installed (${lastLine(resolved.stderr)})`
    return { reason: why }
  }
  const path = resolved.stdout.trim()
  if (!existsSync(path)) return { reason: `the Electron binary ${path} is missing` }
  const run = spawnSync(path, ['-p', 'process.versions.electron'], {
    encoding: 'utf8',
    timeout: runTimeoutMs,
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
  })
  if (run.error !== undefined)
    return { reason: `the Electron binary does not run (${run.error.message})` }
  if (run.status !== 0) {
    return {
      reason: `the Electron binary does not run (${lastLine(run.stderr) || `exit ${run.status}`})`,
    }
  }
  const version = run.stdout.trim()
  if (version !== electronVersion()) {
    return { reason: `the Electron binary is version ${version}, not ${electronVersion()}` }
  }
  return { path }
}

/** Why no window can be shown here, if that is the case. */
export function displayProblem(env = process.env, platform = process.platform) {
  if (platform !== 'linux') return undefined
  if (env.DISPLAY || env.WAYLAND_DISPLAY) return undefined
  return 'there is no display (DISPLAY and WAYLAND_DISPLAY are not set)'
}

/**
 * Checks that `file` is a native module for the given NODE_MODULE_VERSION
 * and not for this Node's: loading it here must fail with an ABI mismatch.
 */
export function nativeModuleAbi(file) {
  try {
    process.dlopen({ exports: {} }, file)
    return process.versions.modules
  } catch (error) {
    const match = /NODE_MODULE_VERSION (\d+)\. This version of Node\.js requires/.exec(
      String(error?.message),
    )
    return match?.[1]
  }
}
