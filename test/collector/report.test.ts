/**
 * `routemeter report` on traffic recorded through a real Koa app in two
 * versions, where one endpoint is made 40% slower, one 10% faster, one left
 * as it was, one left as fast but failing a quarter of its requests and one
 * barely requested: the report names exactly those, with the right signs and
 * error rates, exact and from the histograms, by either test; its JSON, its
 * exit codes, and its refusals.
 */
import { spawnSync } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import Koa from 'koa'
import { Router } from '@koa/router'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { bind } from 'routemeter'
import { compareReleases, type Comparison } from '../../collector/src/compare/releases.js'
import { removeTempDirs, request, ROOT, tempDatabase } from './helpers.js'

afterAll(async () => {
  await served?.close()
  removeTempDirs()
})

const CLI = join(ROOT, 'collector/dist/esm/cli.js')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Milliseconds each endpoint takes in each version. */
const PLAN: Record<string, [number, number]> = {
  '/slow': [20, 28],
  '/quick': [20, 18],
  '/same': [20, 20],
  '/flaky': [20, 20],
  '/rare': [20, 40],
}
/** In the newer version every 4th request to /flaky answers 500. */
const FAILING_EVERY = 4

let database: string
/** the newer version's app, left running: it serves its file to `report <URL>` */
let served: { url: string; close: () => Promise<void> } | undefined
const TOKEN = 'report-test-token-0123456789'

/** An app of one version of the service, bound to the shared file. */
async function start(version: string, index: 0 | 1, remote = false) {
  const app = new Koa()
  const router = new Router()
  let flaky = 0
  for (const [path, ms] of Object.entries(PLAN)) {
    router.get(path, async (ctx) => {
      await sleep(ms[index])
      if (path === '/flaky' && index === 1 && ++flaky % FAILING_EVERY === 0) ctx.status = 500
      ctx.body = 'ok'
    })
  }
  const handle = bind(app, {
    database,
    version,
    flushInterval: 100,
    ...(remote ? { remote: { token: TOKEN } } : {}),
  })
  app.use(router.routes())
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    close: async () => {
      handle.close()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/**
 * Both versions serve side by side (two apps, one file, as during a canary
 * release), their requests interleaved: whatever else the machine does falls
 * on both alike, so only the planted changes set them apart.
 */
async function serveBoth(): Promise<void> {
  const before = await start('1.0.0', 0)
  await request(`${before.url}/same`) // 1.0.0 is seen first
  const after = await start('1.1.0', 1, true)
  for (const path of ['/same', '/slow', '/quick', '/flaky']) {
    for (let round = 0; round < 40; round++) {
      await Promise.all(
        [before, after].flatMap((app) =>
          Array.from({ length: 4 }, () => request(`${app.url}${path}`)),
        ),
      )
    }
  }
  for (const app of [before, after]) for (let i = 0; i < 5; i++) await request(`${app.url}/rare`)
  await before.close()
  served = after
}

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return runWith({}, ...args)
}

function runWith(
  env: Record<string, string>,
  ...args: string[]
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

beforeAll(async () => {
  database = tempDatabase()
  await serveBoth()
}, 60_000)

describe('routemeter report', () => {
  it('names the endpoint made slower and the one made faster, and no other', () => {
    const out = run('report', database, '--json')
    expect(out.status, out.stderr).toBe(0)
    const report = JSON.parse(out.stdout) as Comparison
    expect(report.baseline.versionNames).toEqual(['1.0.0'])
    expect(report.candidate.versionNames).toEqual(['1.1.0'])
    const verdicts = Object.fromEntries(report.endpoints.map((e) => [e.route, e.verdict]))
    expect(verdicts).toEqual({
      '/slow': 'slower',
      '/quick': 'faster',
      '/same': 'no change',
      '/flaky': 'no change',
      '/rare': 'too few requests',
    })
    const slow = report.endpoints.find((e) => e.route === '/slow')!
    expect(slow.baseline.requests).toBe(160)
    expect(report.endpoints.find((e) => e.route === '/same')!.baseline.requests).toBe(161)
    expect(slow.medianChangePercent).toBeGreaterThan(25)
    expect(slow.adjustedPValue).toBeLessThan(0.001)
    expect(slow.p95ChangePercent).toBeGreaterThan(25)
    expect(slow.baseline.p95Us).toBeGreaterThanOrEqual(slow.baseline.medianUs!)
    expect(slow.baseline.p25Us).toBeLessThanOrEqual(slow.baseline.medianUs!)
    expect(slow.baseline.errorRate).toBe(0)
    const flaky = report.endpoints.find((e) => e.route === '/flaky')!
    expect(flaky.baseline.errorRate).toBe(0)
    expect(flaky.candidate.errorRate).toBe(1 / FAILING_EVERY)
    expect(flaky.errorRateChange).toBeCloseTo(100 / FAILING_EVERY, 9)
    // A fresh file still holds every request: the figures are exact.
    expect(report.endpoints.every((e) => e.exact)).toBe(true)
    expect(report.method).toMatch(/from every request/)
    const quick = report.endpoints.find((e) => e.route === '/quick')!
    expect(quick.medianChangePercent).toBeLessThan(-5)
    // Sorted by impact: the 40% one first.
    expect(report.endpoints[0]!.route).toBe('/slow')
  })

  it('gives the same verdicts from the hourly histograms once the raw requests are gone, quantiles within a bucket', () => {
    const exact = JSON.parse(run('report', database, '--json').stdout) as Comparison
    const copy = tempDatabase('pruned.db')
    const source = new Database(database, { readonly: true })
    source.exec(`VACUUM INTO '${copy}'`)
    source.close()
    const db = new Database(copy)
    db.exec('DELETE FROM request')
    const sides = { baseline: { versions: ['1.0.0'] }, candidate: { versions: ['1.1.0'] } }
    const fromRollups = compareReleases(db, sides)
    db.close()
    expect(fromRollups.endpoints.some((e) => e.exact)).toBe(false)
    expect(fromRollups.method).toMatch(/histograms/)
    for (const e of fromRollups.endpoints) {
      const twin = exact.endpoints.find((x) => x.route === e.route)!
      expect(e.verdict, e.route).toBe(twin.verdict)
      expect(e.candidate.requests).toBe(twin.candidate.requests)
      expect(e.candidate.errorRate).toBe(twin.candidate.errorRate)
      if (e.verdict === 'too few requests') continue
      for (const q of ['medianUs', 'p95Us'] as const) {
        expect(Math.abs(e.candidate[q]! / twin.candidate[q]! - 1), `${e.route} ${q}`).toBeLessThan(
          0.0443,
        )
      }
    }
  })

  it('tests with Mann-Whitney on request, to the same verdicts', () => {
    const out = run('report', database, '--json', '--test', 'mann-whitney')
    expect(out.status, out.stderr).toBe(0)
    const report = JSON.parse(out.stdout) as Comparison
    expect(report.test).toBe('mann-whitney')
    expect(report.method).toMatch(/Mann-Whitney/)
    const verdicts = Object.fromEntries(report.endpoints.map((e) => [e.route, e.verdict]))
    expect(verdicts['/slow']).toBe('slower')
    expect(verdicts['/quick']).toBe('faster')
    expect(verdicts['/same']).toBe('no change')
    expect(verdicts['/rare']).toBe('too few requests')
    const bad = run('report', database, '--test', 't-test')
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/--test must be mood or mann-whitney, got t-test/)
  })

  it('prints a table, and fails a pipeline on a regression past the threshold', () => {
    const table = run('report', database, '--baseline', '1.0.0', '--candidate', '1.1.0')
    expect(table.status).toBe(0)
    expect(table.stdout).toMatch(/GET \/slow\s+slower/)
    expect(table.stdout).toMatch(/GET \/same\s+no change/)
    const failing = run('report', database, '--fail-on-regression', '20')
    expect(failing.status).toBe(1)
    expect(failing.stderr).toMatch(/GET \/slow .*% slower/)
    expect(run('report', database, '--fail-on-regression', '80').status).toBe(0)
    const one = run('report', database, '--endpoint', 'GET /quick', '--json')
    expect((JSON.parse(one.stdout) as Comparison).endpoints.map((e) => e.route)).toEqual(['/quick'])
  })

  it("reports on a running app's file, pulled through its remote access with the token", async () => {
    // spawnSync would block the app serving the file: the CLI runs beside it.
    const { spawn } = await import('node:child_process')
    const beside = (token: string) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [CLI, 'report', served!.url, '--json'], {
          env: { ...process.env, ROUTEMETER_TOKEN: token },
        })
        let stdout = ''
        let stderr = ''
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
        child.on('close', (status) => resolve({ status, stdout, stderr }))
      })
    const pulled = await beside(TOKEN)
    expect(pulled.status).toBe(0)
    const verdicts = Object.fromEntries(
      (JSON.parse(pulled.stdout) as Comparison).endpoints.map((e) => [e.route, e.verdict]),
    )
    expect(verdicts['/slow']).toBe('slower')
    expect(verdicts['/quick']).toBe('faster')
    const wrong = await beside('not-the-token-0123456789')
    expect(wrong.status).toBe(2)
    expect(wrong.stderr).toMatch(/refused the token/)
    const noToken = runWith({ ROUTEMETER_TOKEN: '' }, 'report', served!.url)
    expect(noToken.status).toBe(2)
    expect(noToken.stderr).toMatch(/set ROUTEMETER_TOKEN/)
  })

  it('refuses bad arguments and files with exit code 2 and a clear message', () => {
    const none = run('report')
    expect(none.status).toBe(2)
    expect(none.stderr).toMatch(/report takes one metrics file/)
    const unknown = run('report', database, '--baseline', '0.9', '--candidate', '1.1.0')
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toMatch(/the baseline names no version in this file: 0\.9/)
    const dates = run(
      'report',
      database,
      '--baseline',
      '2026-12-09..2026-12-01',
      '--candidate',
      '1.1.0',
    )
    expect(dates.status).toBe(2)
    expect(dates.stderr).toMatch(/ends before it starts/)
    const missing = run('report', join(ROOT, 'no-such.db'))
    expect(missing.status).toBe(2)
    expect(run('--help').stdout).toMatch(/routemeter report <metrics.db \| app URL>/)
  })
})
