/**
 * Level 2 end to end: a maintainer sets an endpoint to level 2 in the UI; the
 * running collector picks it up, and the next slow requests appear in the
 * endpoint's Outliers panel with what they were waiting on (a waterfall), in
 * the Outliers tab and as a count in the overview.
 */
import { Router } from '@koa/router'
import Database from 'better-sqlite3'
import Koa from 'koa'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { bind, type RoutemeterHandle } from 'routemeter'
import { waitFor } from '../fixtures/collected-app.js'
import { tempDir, type TempDir } from '../fixtures/metrics-files.js'
import {
  launchBrowser,
  openPage,
  screenshot,
  SCREENSHOTS,
  settle,
  startDashboard,
  waitForPanel,
  type Dashboard,
  type Problems,
} from './helpers.js'

let temp: TempDir
let file: string
let upstream: Server
let upstreamUrl: string
let server: Server
let origin: string
let collector: RoutemeterHandle
let dashboard: Dashboard
let browser: Browser
let page: Page
let problems: Problems

const SLOW_MS = 400

function listening(s: Server): Promise<string> {
  return new Promise((resolve) =>
    s.once('listening', () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)),
  )
}

async function get(path: string): Promise<void> {
  const response = await fetch(origin + path)
  await response.arrayBuffer()
}

function outlierCount(route: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    return db
      .prepare(
        'SELECT count(*) FROM outlier o JOIN endpoint e ON e.id = o.endpoint_id WHERE e.route = ?',
      )
      .pluck()
      .get(route) as number
  } finally {
    db.close()
  }
}

function endpointId(route: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    return db.prepare('SELECT id FROM endpoint WHERE route = ?').pluck().get(route) as number
  } finally {
    db.close()
  }
}

beforeAll(async () => {
  temp = tempDir('routemeter-e2e-outliers-')
  file = join(temp.dir, 'outliers.db')
  upstream = createServer((req, res) => {
    const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0)
    setTimeout(() => res.end('{"stock":3}'), ms)
  }).listen(0, '127.0.0.1')
  upstreamUrl = await listening(upstream)

  const app = new Koa()
  const router = new Router()
  router.get('/api/orders/:id', async (ctx) => {
    const slow = ctx.query.slow === '1'
    // A quick call, then (when slow) one that keeps the request waiting.
    await (await fetch(`${upstreamUrl}/prices?ms=1`)).text()
    if (slow) await (await fetch(`${upstreamUrl}/stock?ms=${SLOW_MS}`)).text()
    ctx.body = { id: ctx.params.id }
  })
  router.get('/api/report', (ctx) => {
    if (ctx.query.slow === '1') {
      const end = Date.now() + SLOW_MS
      while (Date.now() < end) {
        // a synchronous loop: the event loop is blocked
      }
    }
    ctx.body = 'report'
  })
  app.use(router.routes())
  collector = bind(app, {
    database: file,
    version: '3.1.0',
    groupBy: () => 'alice',
    flushOnExit: false,
    levelPollInterval: 200,
    outliers: { minDuration: 100 },
  })
  server = app.listen(0, '127.0.0.1')
  origin = await listening(server)
  for (let i = 0; i < 5; i++) await get(`/api/orders/${i}`)
  await get('/api/report')
  expect(collector.flush()).toBe(true)

  dashboard = await startDashboard({ file })
  browser = await launchBrowser()
  ;({ page, problems } = await openPage(browser, dashboard.url))
  await waitForPanel(page, 'overview')
})

afterAll(async () => {
  await browser?.close()
  await dashboard?.stop()
  collector?.close()
  server?.closeAllConnections()
  server?.close()
  upstream?.closeAllConnections()
  upstream?.close()
  temp?.cleanup()
})

/**
 * Fast requests until the endpoint has a threshold, then slow ones until an
 * outlier is in the file: the collector applies the level at its next poll.
 */
async function slowRequestsUntilOutlier(route: string, path: string): Promise<void> {
  await waitFor(
    `an outlier of ${route} in the file`,
    async () => {
      for (let i = 0; i < 25; i++) await get(path)
      await new Promise((resolve) => setTimeout(resolve, 120))
      await get(`${path}${path.includes('?') ? '&' : '?'}slow=1`)
      await new Promise((resolve) => setTimeout(resolve, 120))
      collector.flush()
      return outlierCount(route) > 0
    },
    20_000,
    50,
  )
}

test('level 2 chosen on the endpoint page makes the next slow request an outlier with its waterfall', async () => {
  const id = endpointId('/api/orders/:id')
  await page.goto(`${dashboard.url}#/endpoint/${id}`)
  await waitForPanel(page, 'outliers', 'empty')
  expect(await page.textContent('[data-panel="outliers"]')).toContain('set it to level 2')
  const control = page.locator('.endpoint-head .level-control')
  expect(await control.locator('[data-level-summary]').textContent()).toBe(
    'every request is recorded',
  )
  await control.locator('button', { hasText: '2' }).click()
  await expect.poll(() => control.getAttribute('data-outcome')).toBe('saved')

  await slowRequestsUntilOutlier('/api/orders/:id', '/api/orders/42')
  // The file changed: the panel refreshes by itself.
  await waitForPanel(page, 'outliers')
  const row = page.locator('[data-outlier-row]').first()
  await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1)
  expect(await row.textContent()).toContain(`GET ${upstreamUrl}/stock?ms=${SLOW_MS}`)
  expect(await row.locator('.cause-chip').textContent()).toBe('operation')
  await page.waitForSelector(
    '[data-outlier-timeline] .apexcharts-scatter-series, [data-outlier-timeline] svg',
  )

  await row.click()
  const detail = page.locator('.outlier-detail')
  await detail.waitFor()
  expect(await detail.getAttribute('data-cause')).toBe('operation')
  expect(await detail.locator('h3').textContent()).toContain('/api/orders/42?slow=1')
  const bars = detail.locator('.waterfall-row')
  // The request, the quick price call, the slow stock call (open when caught).
  expect(await bars.count()).toBe(3)
  expect(await bars.nth(0).getAttribute('data-kind')).toBe('request')
  expect(await bars.nth(1).getAttribute('data-kind')).toBe('operation')
  expect(await bars.nth(2).getAttribute('data-kind')).toBe('open')
  expect(await bars.nth(2).locator('.waterfall-label').textContent()).toContain('/stock?ms=400')
  expect(await detail.locator('[data-process]').textContent()).toContain('Requests in flight')
  expect(await detail.locator('[data-request]').textContent()).toContain(':id42')
  await settle(page)
  await screenshot(page, 'outliers-endpoint')
  await page
    .locator('[data-panel="outliers"]')
    .screenshot({ path: join(SCREENSHOTS, 'outliers-panel.png') })
  expect(problems.errors).toEqual([])
})

test('the Outliers tab lists every endpoint’s outliers; a blocked event loop is named', async () => {
  const id = endpointId('/api/report')
  await page.goto(`${dashboard.url}#/endpoint/${id}`)
  await waitForPanel(page, 'outliers', 'empty')
  const control = page.locator('.endpoint-head .level-control')
  await control.locator('button', { hasText: '2' }).click()
  await expect.poll(() => control.getAttribute('data-outcome')).toBe('saved')
  await slowRequestsUntilOutlier('/api/report', '/api/report')

  await page.click('[data-tab="outliers"]')
  await waitForPanel(page, 'outliers')
  const rows = page.locator('[data-outlier-row]')
  await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(2)
  // Newest first: the report, blocked by its own loop.
  expect(await rows.nth(0).textContent()).toContain('/api/report')
  expect(await rows.nth(0).locator('.cause-chip').textContent()).toBe('event loop')
  await rows.nth(0).click()
  const detail = page.locator('.outlier-detail')
  await detail.waitFor()
  expect(await detail.getAttribute('data-cause')).toBe('event-loop')
  expect(await detail.locator('[data-cause-box]').textContent()).toMatch(
    /The event loop was blocked: event loop blocked for \d+ ms/,
  )
  expect(await detail.locator('[data-process]').textContent()).toContain(
    '1 in all · 1 of this endpoint',
  )
  await settle(page)
  await screenshot(page, 'outliers-tab')

  await page.click('[data-tab="overview"]')
  await waitForPanel(page, 'overview')
  const cell = page.locator('tr[data-endpoint="GET /api/report"] [data-cell="outliers"]')
  await expect.poll(() => cell.textContent(), { timeout: 10_000 }).toBe('1')
  expect(problems.errors).toEqual([])
})
