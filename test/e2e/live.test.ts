/**
 * A running collector writes the file the UI shows: new requests appear
 * without a reload, and a level chosen in the UI reaches the collector.
 */
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startCollectedApp, waitFor, type CollectedApp } from '../fixtures/collected-app.js'
import { tempDir, type TempDir } from '../fixtures/metrics-files.js'
import { Expected, parseCount } from './expected.js'
import {
  launchBrowser,
  openPage,
  screenshot,
  startDashboard,
  waitForPanel,
  type Dashboard,
} from './helpers.js'

let temp: TempDir
let file: string
let app: CollectedApp
let dashboard: Dashboard
let browser: Browser
let page: Page

function requestCount(endpoint: string): number {
  const expected = new Expected(file)
  try {
    const { id } = expected.endpoint(endpoint)
    return expected.count(0, Number.MAX_SAFE_INTEGER, id)
  } finally {
    expected.close()
  }
}

function hitsCell(endpoint: string) {
  return page.locator(`tr[data-endpoint="${endpoint}"] [data-cell="range-hits"] .main-value`)
}

beforeAll(async () => {
  temp = tempDir('routemeter-e2e-live-')
  file = join(temp.dir, 'live.db')
  app = await startCollectedApp(file)
  expect(await app.get('/api/items')).toBe(200)
  expect(app.collector.flush()).toBe(true)
  dashboard = await startDashboard({ file })
  browser = await launchBrowser()
  ;({ page } = await openPage(browser, dashboard.url))
  await waitForPanel(page, 'overview')
})

afterAll(async () => {
  await browser?.close()
  await dashboard?.stop()
  await app?.close()
  temp?.cleanup()
})

test('requests written by a running collector appear without a reload', async () => {
  expect(await hitsCell('GET /api/items').textContent()).toBe('1')
  await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'same page'))
  for (let i = 0; i < 5; i++) await app.get('/api/items')
  for (let i = 0; i < 3; i++) await app.get('/api/items/7')
  expect(app.collector.flush()).toBe(true)
  await expect.poll(() => hitsCell('GET /api/items').textContent(), { timeout: 10_000 }).toBe('6')
  await expect
    .poll(() => hitsCell('GET /api/items/:id').textContent(), { timeout: 10_000 })
    .toBe('3')
  expect(await page.textContent('[data-file-summary] [data-stat="requests"]')).toContain(
    '9 requests',
  )
  expect(await page.evaluate(() => (window as unknown as { marker?: string }).marker)).toBe(
    'same page',
  )
  // The utilization view shows them too, live as well, and keeps the zoom it was given.
  await page.click('[data-tab="utilization"]')
  await waitForPanel(page, 'utilization')
  const chart = '[data-panel="utilization"] [data-chart="stacked-bar"]'
  await page.click(`${chart} .apexcharts-zoomin-icon`)
  await expect.poll(() => page.getAttribute(chart, 'data-zoom')).not.toBe('null')
  const zoom = await page.getAttribute(chart, 'data-zoom')
  const axis = await page.locator(`${chart} .apexcharts-xaxis-label`).allTextContents()
  await app.get('/api/items')
  app.collector.flush()
  await expect
    .poll(() => page.textContent('[data-panel="utilization"] [data-stat="total"]'), {
      timeout: 10_000,
    })
    .toBe('10 requests')
  expect(await page.getAttribute(chart, 'data-zoom')).toBe(zoom)
  expect(await page.locator(`${chart} .apexcharts-xaxis-label`).allTextContents()).toEqual(axis)
  await page.click(`${chart} .apexcharts-reset-icon`)
  await expect.poll(() => page.getAttribute(chart, 'data-zoom')).toBe('null')
  await screenshot(page, 'live-utilization')
  await page.click('[data-tab="overview"]')
  await waitForPanel(page, 'overview')
})

test('level 0 chosen in the UI reaches the file and the running collector', async () => {
  const endpoint = 'GET /api/items'
  const control = page.locator(`tr[data-endpoint="${endpoint}"] .level-control`)
  await control.locator('button', { hasText: '0' }).click()
  await expect.poll(() => control.getAttribute('data-outcome')).toBe('saved')
  const reread = new Expected(file)
  try {
    expect(reread.level(reread.endpoint(endpoint).id)).toBe(0)
  } finally {
    reread.close()
  }
  // The collector polls the file for level changes: once it has seen this one, it stops recording.
  await waitFor(
    'the collector to apply level 0',
    async () => {
      const before = requestCount(endpoint)
      await app.get('/api/items')
      app.collector.flush()
      return requestCount(endpoint) === before
    },
    10_000,
  )
  const settled = requestCount(endpoint)
  for (let i = 0; i < 3; i++) await app.get('/api/items')
  app.collector.flush()
  expect(requestCount(endpoint)).toBe(settled)
  // The other endpoint still records.
  await app.get('/api/items/8')
  app.collector.flush()
  await expect
    .poll(async () => parseCount(await hitsCell('GET /api/items/:id').textContent()), {
      timeout: 10_000,
    })
    .toBe(4)
})
