/**
 * The states a person meets besides a full file: an empty file, a single
 * request, a view loading, the server gone, no file, and each file the app
 * must refuse, with the reason it gives.
 */
import { Router } from '@koa/router'
import Koa from 'koa'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { bind, createCollector } from 'routemeter'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { ApiError } from '../../src-main/api/contract.js'
import { toApiError } from '../../src-main/api/errors.js'
import { DashboardService } from '../../src-main/services/dashboard.js'
import {
  buildMetricsFile,
  makeBadFile,
  tempDir,
  type BadFileKind,
  type TempDir,
} from '../fixtures/metrics-files.js'
import {
  dataOf,
  launchBrowser,
  openPage,
  screenshot,
  settle,
  startDashboard,
  waitForPanel,
} from './helpers.js'

let temp: TempDir
let browser: Browser

beforeAll(async () => {
  temp = tempDir('routemeter-e2e-states-')
  browser = await launchBrowser()
})

afterAll(async () => {
  await browser?.close()
  temp?.cleanup()
})

/** Writes `requests` requests of `GET /api/one` through a real Koa app and collector. */
async function collectedFile(name: string, version: string, requests: number): Promise<string> {
  const database = join(temp.dir, name)
  const app = new Koa()
  const router = new Router()
  router.get('/api/one', (ctx) => {
    ctx.body = 'one'
  })
  app.use(router.routes())
  const collector = bind(app, { database, version, groupBy: () => 'alice', flushOnExit: false })
  const server = app.listen(0, '127.0.0.1')
  await new Promise<void>((resolve) => server.once('listening', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  for (let i = 0; i < requests; i++) await (await fetch(`${origin}/api/one`)).text()
  collector.close()
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return database
}

describe('states of the UI', () => {
  test('an empty metrics file says so in every view', async () => {
    const database = join(temp.dir, 'empty.db')
    createCollector({ database, flushOnExit: false }).close()
    const dashboard = await startDashboard({ file: database })
    const { page, context, problems } = await openPage(browser, dashboard.url)
    try {
      await waitForPanel(page, 'overview', 'ready')
      expect(await page.textContent('.overview .state-empty')).toContain(
        'This file has no endpoint yet.',
      )
      expect(await page.textContent('[data-file-summary] [data-stat="requests"]')).toContain(
        '0 requests · 0 endpoints',
      )
      await screenshot(page, 'empty-file-overview')
      for (const [tab, panel] of [
        ['utilization', 'utilization'],
        ['heatmap', 'heatmap'],
        ['performance', 'performance'],
        ['status', 'status'],
      ] as const) {
        await page.click(`[data-tab="${tab}"]`)
        await waitForPanel(page, panel, 'empty')
      }
      await page.click('[data-tab="versions"]')
      await waitForPanel(page, 'versions', 'empty')
      expect(await page.textContent('[data-panel="versions"] .state-empty')).toContain(
        'Choose an endpoint.',
      )
      await page.click('[data-tab="utilization"]')
      await waitForPanel(page, 'utilization', 'empty')
      await screenshot(page, 'empty-file-utilization')
      expect(problems.errors).toEqual([])
    } finally {
      await context.close()
      await dashboard.stop()
    }
  })

  test('a single request: one box, one version shortened to 7 characters', async () => {
    const commit = '9fceb02d0ae598e95dc970b74767f19372d61af8'
    const database = await collectedFile('single.db', commit, 1)
    const dashboard = await startDashboard({ file: database })
    const { page, context, problems } = await openPage(browser, dashboard.url)
    try {
      await waitForPanel(page, 'overview')
      const row = page.locator('tr[data-endpoint="GET /api/one"]')
      expect(await row.locator('[data-cell="range-hits"] .main-value').textContent()).toBe('1')
      await page.click('[data-tab="performance"]')
      await waitForPanel(page, 'performance')
      const box = '[data-panel="performance"] [data-chart="box-plot"]'
      expect(await dataOf<number[]>(page, box, 'counts')).toEqual([1])
      await settle(page)
      expect(await page.innerText('[data-panel="performance"] [data-note="few-requests"]')).toBe(
        'Fewer than 5 requests, so the box is a line or a dot: GET /api/one (1).',
      )
      await screenshot(page, 'single-request-performance')
      await page.click('[data-tab="versions"]')
      await waitForPanel(page, 'versions')
      await settle(page)
      const labels = await dataOf<string[][]>(
        page,
        '[data-panel="versions"] [data-chart]',
        'labels',
      )
      expect(labels).toEqual([['9fceb02', new Date().toISOString().slice(0, 10)]])
      expect(
        await page.locator('[data-panel="versions"] .apexcharts-xaxis-label').first().textContent(),
      ).toContain('9fceb02')
      await screenshot(page, 'single-request-versions')
      await page.click('[data-tab="clients"]')
      await waitForPanel(page, 'clients-user')
      expect(
        await dataOf<string[][]>(
          page,
          '[data-panel="clients-user"] [data-chart="box-plot"]',
          'labels',
        ),
      ).toEqual([['alice']])
      expect(problems.errors).toEqual([])
    } finally {
      await context.close()
      await dashboard.stop()
    }
  })

  test('a view loading, then failing when the server is gone', async () => {
    const file = buildMetricsFile(temp.dir, { name: 'gone.db', requests: 2000 })
    const dashboard = await startDashboard({ file })
    const { page, context } = await openPage(browser, dashboard.url)
    try {
      await waitForPanel(page, 'overview')
      // Hold the utilization answer to see the loading state.
      let release: () => void = () => undefined
      const held = new Promise<void>((resolve) => (release = resolve))
      await page.route('**/api/utilization?**', async (route) => {
        await held
        await route.continue()
      })
      await page.click('[data-tab="utilization"]')
      await waitForPanel(page, 'utilization', 'loading')
      expect(await page.textContent('[data-panel="utilization"] .state-loading')).toContain(
        'Loading…',
      )
      await screenshot(page, 'loading')
      release()
      await waitForPanel(page, 'utilization')
      await page.unroute('**/api/utilization?**')

      await dashboard.stop()
      await page.waitForSelector('[data-warning]')
      expect(await page.textContent('[data-warning]')).toContain(
        'Lost the connection to the Routemeter server',
      )
      await page.click('[data-tab="performance"]')
      await waitForPanel(page, 'performance', 'error')
      expect(await page.textContent('[data-panel="performance"] .state-error')).toContain(
        'Cannot reach the Routemeter server',
      )
      await screenshot(page, 'server-gone')
      // A view that had data keeps it and says the refresh failed.
      await page.click('[data-tab="utilization"]')
      await page.click('[data-preset="7d"]')
      await page.waitForSelector('[data-panel="utilization"] .notice.error')
      expect(await page.getAttribute('[data-panel="utilization"]', 'data-state')).toBe('ready')
    } finally {
      await context.close()
      await dashboard.stop().catch(() => undefined)
    }
  })

  test('without a file, then each file the app refuses, with its reason', async () => {
    const good = buildMetricsFile(temp.dir, { name: 'good.db', requests: 2000 })
    const dashboard = await startDashboard({ allowOpen: true })
    const { page, context, problems } = await openPage(browser, dashboard.url)
    try {
      await page.waitForSelector('[data-file-error][data-code="NO_FILE"]')
      expect(await page.textContent('[data-file-error] h1')).toBe('No metrics file is open')
      await screenshot(page, 'no-file')
      await page.click('[data-file-error] [data-action="open"]')

      const kinds: Record<BadFileKind, ApiError['code']> = {
        missing: 'FILE_MISSING',
        empty: 'FILE_EMPTY',
        text: 'NOT_SQLITE',
        binary: 'NOT_SQLITE',
        'truncated-mid-page': 'CORRUPT',
        'truncated-pages': 'CORRUPT',
        'corrupt-pages': 'CORRUPT',
        'other-app': 'OTHER_APP',
        'unmarked-sqlite': 'OTHER_APP',
        'blank-sqlite': 'FILE_EMPTY',
        'too-new': 'TOO_NEW',
      }
      const probe = new DashboardService({ watch: false })
      for (const [kind, code] of Object.entries(kinds) as Array<[BadFileKind, string]>) {
        const path = makeBadFile(temp.dir, kind, good)
        const refusal = await probe.openFile({ path }).then(
          () => null,
          (error: unknown) => toApiError(error),
        )
        expect(refusal?.code, `${kind} must be refused`).toBe(code)
        await page.fill('[data-input="path"]', path)
        await page.click('.path-form button[type="submit"]')
        await expect
          .poll(() => page.textContent('[data-open-error]'), { message: kind })
          .toBe(refusal!.message)
        if (kind === 'too-new' || kind === 'text' || kind === 'other-app') {
          await screenshot(page, `bad-file-${kind}`)
        }
      }
      await probe.close()

      // A good file then opens in place of the error.
      await page.fill('[data-input="path"]', good)
      await page.click('.path-form button[type="submit"]')
      await waitForPanel(page, 'overview')
      expect(await page.locator('[data-file-error]').count()).toBe(0)
      // 404s of the refused opens are expected; nothing else.
      expect(problems.errors.filter((e) => !/status of (404|409|422)/.test(e))).toEqual([])
    } finally {
      await context.close()
      await dashboard.stop()
    }
  })
})
