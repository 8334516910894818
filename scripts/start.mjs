#!/usr/bin/env node
/**
 * `npm start -- [path/to/metrics.db]`: builds, then opens the desktop app,
 * or, where Electron cannot start (no binary, no display, no better-sqlite3
 * for Electron's ABI), says why in one line and starts web mode instead.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { build } from './build.mjs'
import { buildNative } from './build-native.mjs'
import { electronArgs, resolveFileArgs } from './cli-args.mjs'
import { displayProblem, findElectronBinary, ROOT } from './electron-env.mjs'

const args = resolveFileArgs(process.argv.slice(2))

try {
  build()
} catch (error) {
  console.error(error.message)
  process.exit(1)
}

/** Why Electron cannot start, or the binary to start. */
function electronOrReason() {
  const reasons = []
  const display = displayProblem()
  const electron = findElectronBinary()
  if (electron.reason !== undefined) reasons.push(electron.reason)
  if (display !== undefined) reasons.push(display)
  if (reasons.length > 0) return { reason: reasons.join(', and ') }
  const native = buildNative({ log: (line) => console.log(line) })
  if (!native.ok)
    return { reason: `better-sqlite3 cannot be built for Electron (${native.reason})` }
  return { path: electron.path }
}

const electron = electronOrReason()
if (electron.reason !== undefined) {
  console.log(`Electron cannot start here: ${electron.reason}; starting web mode instead.`)
  const child = spawn(process.execPath, [join(ROOT, 'out', 'main', 'serve.js'), ...args], {
    cwd: ROOT,
    stdio: 'inherit',
  })
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
  child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 0 : 1)))
} else {
  const child = spawn(electron.path, [ROOT, ...electronArgs(args)], { cwd: ROOT, stdio: 'inherit' })
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
  child.on('exit', (code, signal) => {
    if (code !== 0) console.error(`Electron exited with ${signal ?? `code ${code}`}.`)
    process.exit(code ?? 1)
  })
}
