/**
 * Entry of web mode, bundled into out/main/serve.js and run with plain Node:
 *   node out/main/serve.js [metrics.db] [--port N] [--host H] [--static DIR] [--allow-open]
 * The renderer build is looked for next to this file's folder (out/renderer).
 */
import { fileURLToPath } from 'node:url'
import { parseServeArgs, runServe, USAGE, type RunningServe, type ServeOptions } from './cli.js'

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
  const state: { running?: RunningServe } = {}
  let stopping = false
  const stopNow = (): void => {
    state.running!.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`Routemeter web mode did not stop cleanly: ${(error as Error).message}`)
        process.exit(1)
      },
    )
  }
  // Before the URL is printed: a Ctrl-C that comes right after it must find a handler. It
  // reaches this process twice through scripts/serve.mjs (the terminal's signal and the one
  // it forwards): the second must not end the process before the cleanup is done.
  const stop = (): void => {
    if (stopping) return
    stopping = true
    if (state.running !== undefined) stopNow()
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stop)
  state.running = await runServe(options)
  if (stopping) stopNow()
}

main().catch((error: unknown) => {
  console.error(`Routemeter web mode could not start: ${(error as Error).message}`)
  process.exitCode = 1
})
