#!/usr/bin/env node
/**
 * `npm run dev -- [path/to/metrics.db]`: the app from its sources, reloading as they change.
 * electron-vite dev where Electron can start; elsewhere web mode: the API server from the
 * sources (tsx) and the renderer on Vite's dev server, which forwards /api to it.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { resolveFileArgs } from './cli-args.mjs'
import { displayProblem, findElectronBinary, ROOT } from './electron-env.mjs'

const args = resolveFileArgs(process.argv.slice(2))
// The API's paths, not the renderer's own modules under src-renderer/api/.
const API_CALLS = '^/api/(?!.*\\.ts(\\?|$))'
const children = []
const run = (command, commandArgs, options = {}) => {
  const child = spawn(command, commandArgs, { cwd: ROOT, stdio: 'inherit', ...options })
  children.push(child)
  child.on('exit', (code) => {
    for (const other of children) if (other !== child) other.kill('SIGTERM')
    process.exit(code ?? 0)
  })
  return child
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const child of children) child.kill(signal)
  })
}

const electron = findElectronBinary()
const why = [electron.reason, displayProblem()].filter((reason) => reason !== undefined)
if (why.length === 0) {
  run(process.execPath, [
    join(ROOT, 'node_modules/electron-vite/bin/electron-vite.js'),
    'dev',
    '--',
    ...args,
  ])
} else {
  console.log(
    `Electron cannot start here: ${why.join(', and ')}; starting web mode from the sources.`,
  )
  const api = run(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src-main/web/serve.ts'), ...args, '--port', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  createInterface({ input: api.stdout }).on('line', async (line) => {
    const url = / at (http:\/\/\S+)$/.exec(line)?.[1]
    if (url === undefined) return console.log(line)
    const { createServer } = await import('vite')
    const vue = (await import('@vitejs/plugin-vue')).default
    const config = (await import(join(ROOT, 'electron.vite.config.ts'))).default
    const server = await createServer({
      configFile: false,
      root: join(ROOT, 'src-renderer'),
      resolve: config.renderer.resolve,
      plugins: [vue()],
      server: { host: '127.0.0.1', proxy: { [API_CALLS]: { target: url, changeOrigin: true } } },
    })
    await server.listen()
    console.log(`Routemeter (dev) is at ${server.resolvedUrls.local[0]}, its API at ${url}`)
  })
}
