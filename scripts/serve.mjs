#!/usr/bin/env node
/**
 * `npm run serve -- path/to/metrics.db [--port N] [--host H]`: web mode.
 * Builds when out/ is older than the sources, then runs the built server
 * (out/main/serve.js) with plain Node; it prints the URL to open.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { ensureBuilt, staleReason } from './build.mjs'
import { resolveFileArgs } from './cli-args.mjs'
import { ROOT } from './electron-env.mjs'

function startWebMode(args) {
  const child = spawn(process.execPath, [join(ROOT, 'out', 'main', 'serve.js'), ...args], {
    cwd: ROOT,
    stdio: 'inherit',
  })
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal))
  child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 0 : 1)))
  return child
}

const reason = staleReason()
if (reason !== undefined) {
  console.log(`Building (${reason})…`)
  ensureBuilt()
}
startWebMode(resolveFileArgs(process.argv.slice(2)))
