/**
 * Entry of web mode, bundled into out/main/serve.js and run with plain Node:
 *   node out/main/serve.js [metrics.db] [--port N] [--host H] [--static DIR] [--allow-open]
 * The renderer build is looked for next to this file's folder (out/renderer).
 */
import { fileURLToPath } from 'node:url'
import { parseServeArgs, runServe, USAGE, type ServeOptions } from './cli.js'

const defaultStaticDir = fileURLToPath(new URL('../renderer/', import.meta.url))

async function main(): Promise<void> {
  let options: ServeOptions
  try {
    options = parseServeArgs(process.argv.slice(2), defaultStaticDir)
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`)
    process.exitCode = 2
    return
  }
  // Pulled copies and merged files are this user's alone (SQLite creates files 644 otherwise).
  process.umask(0o077)
  const running = await runServe(options)
  let stopping = false
  // Ctrl-C reaches this process twice through scripts/serve.mjs (the terminal's signal and the
  // one it forwards): the second must not end the process before the cleanup is done.
  const stop = (): void => {
    if (stopping) return
    stopping = true
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  process.on('SIGHUP', stop)
}

main().catch((error: unknown) => {
  console.error(`Routemeter web mode could not start: ${(error as Error).message}`)
  process.exitCode = 1
})
