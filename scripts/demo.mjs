#!/usr/bin/env node
/**
 * `npm run demo`: Routemeter on two real apps, live.
 *
 * Starts the example Express and Koa APIs (collector/examples) writing one
 * metrics file, opens the dashboard on it (`npm start`: desktop, or web mode
 * where Electron cannot start), drives traffic from simulated users, then
 * restarts both apps as a second release so that two versions appear.
 * Stops by itself (or on Ctrl-C) and stops every process it started.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { driveTraffic } from '../collector/examples/traffic.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const RELEASES = ['1.0.0', '1.1.0']
const USAGE = `usage: npm run demo -- [--seconds N] [--out FILE] [--force] [--no-open] [--keep-open]

  --seconds N    traffic time in seconds, half per release; default 120
  --out FILE     the metrics file; default a fresh file in ${join(tmpdir(), 'routemeter-demo')}
  --force        replace FILE if it exists
  --no-open      do not open the dashboard
  --keep-open    keep the dashboard open after the traffic, until Ctrl-C
  --linger N     otherwise, seconds the dashboard stays open after the traffic; default 60`

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '120' },
    out: { type: 'string' },
    force: { type: 'boolean', default: false },
    'no-open': { type: 'boolean', default: false },
    'keep-open': { type: 'boolean', default: false },
    linger: { type: 'string', default: '60' },
    help: { type: 'boolean', short: 'h', default: false },
  },
})
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}
const seconds = Number(values.seconds)
const linger = Number(values.linger)
if (!(seconds > 0) || !(linger >= 0)) {
  console.error(USAGE)
  process.exit(2)
}

/** Every child still running, stopped on exit. */
const children = new Set()
const stop = new AbortController()

function newestMtime(path) {
  const stats = statSync(path)
  if (!stats.isDirectory()) return stats.mtimeMs
  let newest = stats.mtimeMs
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)))
  return newest
}

/** The examples import the built package: build it when its sources are newer. */
function ensureCollectorBuilt() {
  const built = join(ROOT, 'collector', 'dist', 'esm', 'index.js')
  if (existsSync(built) && statSync(built).mtimeMs >= newestMtime(join(ROOT, 'collector', 'src'))) {
    return
  }
  console.log('Building the collector (collector/dist)…')
  const result = spawnSync(process.execPath, [join(ROOT, 'collector', 'scripts', 'build.mjs')], {
    cwd: join(ROOT, 'collector'),
    stdio: 'inherit',
  })
  if (result.status !== 0) throw new Error('the collector did not build')
}

function metricsFile() {
  if (values.out === undefined) {
    const file = join(tmpdir(), 'routemeter-demo', 'metrics.db')
    for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true })
    mkdirSync(dirname(file), { recursive: true })
    return file
  }
  const cwd = process.env.INIT_CWD ?? process.cwd()
  const file = isAbsolute(values.out) ? values.out : resolve(cwd, values.out)
  if (existsSync(file)) {
    if (!values.force) throw new Error(`${file} exists; choose another --out or add --force`)
    for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true })
  }
  return file
}

function track(child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** Starts one example app; resolves with its URL once it listens. */
function startApp(name, file, version) {
  const child = track(
    spawn(process.execPath, [join(ROOT, 'collector', 'examples', name, 'app.js')], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0', ROUTEMETER_DB: file, APP_VERSION: version },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  )
  const prefix = (line) => `[${name} ${version}] ${line}`
  createInterface({ input: child.stderr }).on('line', (line) => console.error(prefix(line)))
  return new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 20 s`)), 20_000)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited (${signal ?? code}) before it listened`))
    })
    createInterface({ input: child.stdout }).on('line', (line) => {
      const url = /listening on (http:\/\/\S+)/.exec(line)?.[1]
      if (url !== undefined) {
        clearTimeout(timer)
        console.log(prefix(line))
        resolveUrl({ child, url })
      }
    })
  })
}

/** SIGTERM (the collector writes what it buffered), then SIGKILL after 5 s. */
function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    child.once('exit', () => {
      clearTimeout(timer)
      done()
    })
    child.kill('SIGTERM')
  })
}

async function stopAll() {
  await Promise.all([...children].map(stopChild))
}

function sleepUnlessStopped(ms) {
  return new Promise((done) => {
    const timer = setTimeout(done, ms)
    stop.signal.addEventListener('abort', () => {
      clearTimeout(timer)
      done()
    })
  })
}

let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (interrupted) {
      for (const child of children) child.kill('SIGKILL')
      process.exit(130)
    }
    interrupted = true
    console.log('\nStopping…')
    stop.abort()
  })
}

async function main() {
  ensureCollectorBuilt()
  const file = metricsFile()
  let dashboard
  const totals = {}
  for (const [index, version] of RELEASES.entries()) {
    if (stop.signal.aborted) break
    if (index > 0) console.log(`\nRelease ${version}: restarting both apps…`)
    const [express, koa] = await Promise.all([
      startApp('express', file, version),
      startApp('koa', file, version),
    ])
    if (index === 0 && !values['no-open']) {
      console.log(`\nOpening the dashboard on ${file} (npm start)…`)
      dashboard = track(
        spawn(process.execPath, [join(ROOT, 'scripts', 'start.mjs'), file], {
          cwd: ROOT,
          stdio: 'inherit',
        }),
      )
    }
    const phase = seconds / RELEASES.length
    console.log(`Traffic from simulated users for ${phase} s…`)
    const stats = await driveTraffic({
      urls: { express: express.url, koa: koa.url },
      seconds: phase,
      signal: stop.signal,
      seed: index + 1,
    })
    totals[version] = stats
    const errors = Object.entries(stats.byStatus)
      .filter(([status]) => Number(status) >= 400)
      .reduce((sum, [, n]) => sum + n, 0)
    console.log(`  ${version}: ${stats.requests} requests, ${errors} answered 4xx/5xx`)
    await Promise.all([stopChild(express.child), stopChild(koa.child)])
  }
  console.log(`\nThe metrics file: ${file}\nLook at it again any time: npm start -- ${file}`)
  if (dashboard !== undefined && children.has(dashboard) && !stop.signal.aborted) {
    const closed = new Promise((done) => dashboard.once('exit', done))
    if (values['keep-open']) {
      console.log('The dashboard stays open; Ctrl-C to quit.')
      await Promise.race([closed, sleepUnlessStopped(2 ** 31 - 1)])
    } else if (linger > 0) {
      console.log(`The dashboard stays open ${linger} s more (Ctrl-C to quit now).`)
      await Promise.race([closed, sleepUnlessStopped(linger * 1000)])
    }
  }
}

try {
  await main()
} catch (error) {
  console.error(`demo: ${error.message}`)
  process.exitCode = 1
} finally {
  await stopAll()
  if (interrupted) process.exitCode = 130
}
