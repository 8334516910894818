/**
 * The view is in the URL: the tab, the range (a preset or custom days), UTC
 * and the selected endpoints survive a reload and open the same from a
 * shared link; what the file opens with by default leaves the URL bare. And
 * the first minute's clarity: the title names the file, the heatmap's tooltip
 * the day, the top bar stays one line at 1024 px.
 */
import { readFileSync } from 'node:fs'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { buildMetricsFile, FIXTURE_NOW, tempDir, type TempDir } from '../fixtures/metrics-files.js'
import { join } from 'node:path'
import {
  launchBrowser,
  openPage,
  SCREENSHOTS,
  startDashboard,
  waitForPanel,
  type Dashboard,
} from './helpers.js'

let temp: TempDir
let dashboard: Dashboard
let browser: Browser

beforeAll(async () => {
  temp = tempDir('routemeter-e2e-url-')
  const file = buildMetricsFile(temp.dir)
  dashboard = await startDashboard({ file, now: FIXTURE_NOW })
  browser = await launchBrowser()
})

afterAll(async () => {
  await browser?.close()
  await dashboard?.stop()
  temp?.cleanup()
})

const pressed = (page: Page, preset: string) =>
  page.getAttribute(`[data-preset="${preset}"]`, 'aria-pressed')

test('a shared link opens its view, range and UTC; changes go into the URL and survive a reload', async () => {
  const { page, problems } = await openPage(browser, dashboard.url, {
    fixedNow: FIXTURE_NOW,
    hash: '#/performance?range=7d&utc=1',
  })
  await waitForPanel(page, 'performance')
  expect(await page.getAttribute('[data-tab="performance"]', 'class')).toContain('active')
  expect(await pressed(page, '7d')).toBe('true')
  expect(await page.isChecked('[data-input="utc"]')).toBe(true)
  // The tab (and a desktop window) names the open file.
  expect(await page.title()).toBe('metrics.db — Routemeter')

  await page.click('[data-preset="90d"]')
  await expect.poll(() => page.evaluate(() => location.hash)).toBe('#/performance?range=90d&utc=1')
  await page.reload()
  await waitForPanel(page, 'performance')
  expect(await pressed(page, '90d')).toBe('true')
  expect(await page.isChecked('[data-input="utc"]')).toBe(true)

  // The file's own default (30 days here) and local time leave the URL bare.
  await page.click('[data-preset="30d"]')
  await page.click('[data-input="utc"]')
  await expect.poll(() => page.evaluate(() => location.hash)).toBe('#/performance')
  expect(problems.errors).toEqual([])
})

test("the hour-of-day heatmap's tooltip names the day of the cell", async () => {
  const { page, problems } = await openPage(browser, dashboard.url, {
    fixedNow: FIXTURE_NOW,
    hash: '#/heatmap',
  })
  await waitForPanel(page, 'heatmap')
  const cell = page.locator('[data-panel="heatmap"] .apexcharts-heatmap-rect').nth(200)
  await cell.hover()
  const tooltip = page.locator('[data-panel="heatmap"] .apexcharts-tooltip-title')
  await expect.poll(() => tooltip.textContent()).toMatch(/\d/)
  await page
    .locator('[data-panel="heatmap"]')
    .screenshot({ path: join(SCREENSHOTS, 'heatmap-tooltip.png') })
  expect(problems.errors).toEqual([])
})

test('custom days and a selection of endpoints come from the link too', async () => {
  const { page, problems } = await openPage(browser, dashboard.url, {
    fixedNow: FIXTURE_NOW,
    hash: '#/utilization?range=2026-11-01..2026-11-10&sel=2,1',
  })
  await waitForPanel(page, 'utilization')
  expect(await pressed(page, 'custom')).toBe('true')
  expect(await page.inputValue('[data-input="from"]')).toBe('2026-11-01')
  expect(await page.inputValue('[data-input="to"]')).toBe('2026-11-10')
  expect(await page.locator('[data-selection] .chip').count()).toBe(2)
  // Clearing the selection takes it out of the URL.
  await page.click('[data-action="clear-selection"]')
  await expect
    .poll(() => page.evaluate(() => location.hash))
    .toBe('#/utilization?range=2026-11-01..2026-11-10')
  expect(problems.errors).toEqual([])
})

test('at 1024 px the top bar stays one line; the counts it shortens are in its tooltip', async () => {
  const context = await browser.newContext({ viewport: { width: 1024, height: 700 } })
  const page = await context.newPage()
  await page.goto(dashboard.url)
  await waitForPanel(page, 'overview')
  const stats = page.locator('.topbar [data-stat="requests"]')
  const line = await stats.evaluate((el) => parseFloat(getComputedStyle(el).lineHeight) || 20)
  expect((await stats.boundingBox())!.height).toBeLessThanOrEqual(line + 1)
  expect((await page.locator('.topbar').boundingBox())!.height).toBeLessThan(50)
  expect(await stats.getAttribute('title')).toMatch(/^20,000 requests · \d+ endpoints · /)
  // What each level keeps, visible beside the table.
  const legend = await page.textContent('[data-level-legend]')
  for (const level of ['0', '1', '2', '3']) expect(legend).toContain(level)
  expect(legend).toContain('where its CPU time goes')
  await page.screenshot({ path: join(SCREENSHOTS, 'topbar-1024.png') })
  await context.close()
})

test("every chart saves as SVG and PNG, and its data as CSV, from ApexCharts' own menu", async () => {
  const { page, context, problems } = await openPage(browser, dashboard.url, {
    fixedNow: FIXTURE_NOW,
    hash: '#/performance',
  })
  await waitForPanel(page, 'performance')
  const chart = page.locator('[data-panel="performance"]')
  await chart.locator('.apexcharts-menu-icon').click()
  for (const item of ['.exportSVG', '.exportPNG', '.exportCSV']) {
    expect(await chart.locator(item).count()).toBe(1)
  }
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    chart.locator('.exportCSV').click(),
  ])
  const path = join(temp.dir, download.suggestedFilename())
  await download.saveAs(path)
  const csv = readFileSync(path, 'utf8')
  // A row per endpoint, with its box plot's figures.
  expect(csv.trim().split('\n').length).toBeGreaterThan(10)
  expect(csv).toContain('/api/products/:id')
  const [svg] = await Promise.all([
    page.waitForEvent('download'),
    (async () => {
      await chart.locator('.apexcharts-menu-icon').click()
      await chart.locator('.exportSVG').click()
    })(),
  ])
  expect(svg.suggestedFilename()).toMatch(/\.svg$/)
  expect(problems.errors).toEqual([])
  await context.close()
})

test('the endpoints table saves as CSV, as sorted and searched, every page', async () => {
  const { page, context, problems } = await openPage(browser, dashboard.url, {
    fixedNow: FIXTURE_NOW,
  })
  await waitForPanel(page, 'overview')
  await page.fill('[data-input="search"]', 'products')
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('[data-action="save-endpoints-csv"]'),
  ])
  expect(download.suggestedFilename()).toBe('endpoints.csv')
  const path = join(temp.dir, 'endpoints.csv')
  await download.saveAs(path)
  const lines = readFileSync(path, 'utf8').trim().split('\r\n')
  expect(lines[0]).toBe(
    'method,route,level,today requests,today 4xx,today 5xx,today median ms,today p95 ms,' +
      'week requests,week 4xx,week 5xx,week median ms,week p95 ms,' +
      'range requests,range 4xx,range 5xx,range median ms,range p95 ms,outliers,last request',
  )
  const shown = await page.locator('.endpoints-table tbody tr').count()
  expect(lines.length - 1).toBe(shown)
  expect(lines.slice(1).every((line) => line.includes('/api/products'))).toBe(true)
  expect(problems.errors).toEqual([])
  await context.close()
})

test('keyboard: Alt+1 to Alt+9 open the tabs, / goes to the search field', async () => {
  const { page, context, problems } = await openPage(browser, dashboard.url, {
    fixedNow: FIXTURE_NOW,
  })
  await waitForPanel(page, 'overview')
  await page.keyboard.press('Alt+4')
  await page.waitForSelector('[data-tab="performance"].active')
  expect(await page.getAttribute('[data-tab="performance"]', 'aria-keyshortcuts')).toBe('Alt+4')
  await page.keyboard.press('Alt+1')
  await waitForPanel(page, 'overview')
  await page.keyboard.press('/')
  expect(await page.evaluate(() => document.activeElement?.getAttribute('data-input'))).toBe(
    'search',
  )
  // Typed into the field, '/' is a character like any other.
  await page.keyboard.type('api/orders')
  expect(await page.inputValue('[data-input="search"]')).toBe('api/orders')
  expect(problems.errors).toEqual([])
  await context.close()
})
