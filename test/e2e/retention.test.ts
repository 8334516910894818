/**
 * Retention in the UI: a file whose older raw rows were pruned says from
 * when single requests are kept while the 30-day views still count every
 * request from the rollups; "About this file" shows the policy, what is
 * kept since when and the space per table, and a policy changed there is
 * written into the file.
 */
import Database from 'better-sqlite3'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { MetricsStore } from 'routemeter/writer'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { buildMetricsFile, tempDir, type TempDir } from '../fixtures/metrics-files.js'
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

const DAY = 86_400_000

let temp: TempDir
let file: string
let dashboard: Dashboard
let browser: Browser
let page: Page
let problems: Problems
let keptSince: number
let total: number

function meta(key: string): string | undefined {
  const db = new Database(file, { readonly: true })
  try {
    return db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined
  } finally {
    db.close()
  }
}

beforeAll(async () => {
  temp = tempDir('routemeter-e2e-retention-')
  const now = Date.now()
  file = buildMetricsFile(temp.dir, { name: 'kept.db', now, days: 30, requests: 20_000 })
  // A collector of this file with 7 days of raw rows prunes the older ones.
  const store = new MetricsStore(
    file,
    { name: 'e2e', source: 'option' },
    now,
    undefined,
    'vm',
    undefined,
    {
      retention: { requestsMs: 7 * DAY },
    },
  )
  while (store.maintain(now, 50));
  store.close()
  keptSince = Number(meta('requests_kept_since'))
  expect(keptSince).toBe(now - 7 * DAY)
  const db = new Database(file, { readonly: true })
  total = db.prepare('SELECT sum(requests) FROM rollup_day').pluck().get() as number
  db.close()

  dashboard = await startDashboard({ file })
  browser = await launchBrowser()
  ;({ page, problems } = await openPage(browser, dashboard.url))
  await waitForPanel(page, 'overview')
})

afterAll(async () => {
  await browser?.close()
  await dashboard?.stop()
  temp?.cleanup()
})

test('a range that starts before the raw rows kept says so, and still counts every request', async () => {
  // All: from the first request, whose hour's raw rows were pruned.
  await page.click('[data-preset="all"]')
  await waitForPanel(page, 'overview')
  const notice = page.locator('[data-raw-window]')
  await notice.waitFor()
  expect(await notice.textContent()).toContain('Single requests are kept from')
  // The overview's range column sums to every request of the 30 days (the rollups).
  const cells = await page.locator('[data-cell="range-hits"] .main-value').allTextContents()
  const sum = cells.reduce((a, text) => a + Number(text.replace(/[^\d]/g, '')), 0)
  expect(sum).toBe(total)
  await page.screenshot({
    path: join(SCREENSHOTS, 'raw-window.png'),
    clip: { x: 0, y: 0, width: 1440, height: 260 },
  })
})

test('About this file shows the policy, what is kept since when and the space per table; a new policy is saved into the file', async () => {
  await page.click('[data-action="about-file"]')
  const dialog = page.locator('[data-about-dialog]')
  await dialog.locator('[data-kept="requests"]').waitFor()
  expect(await dialog.locator('[data-kept="requests"]').textContent()).toContain('7 days')
  expect(await dialog.locator('[data-kept="rollups"]').textContent()).toContain('forever')
  expect(await dialog.locator('[data-about-policy]').textContent()).toContain(
    'the collector’s options',
  )
  const requestRows = await dialog.locator('[data-table="request"] td').nth(1).textContent()
  const db = new Database(file, { readonly: true })
  const stored = db.prepare('SELECT count(*) FROM request').pluck().get() as number
  db.close()
  expect(Number(requestRows!.replace(/[^\d]/g, ''))).toBe(stored)
  await settle(page)
  await screenshot(page, 'about-file')
  await dialog.screenshot({ path: join(SCREENSHOTS, 'about-file-dialog.png') })

  await dialog.locator('[data-field="requests"]').fill('3')
  await dialog.locator('[data-field="maxFileSize"]').fill('5')
  // Below the 10 MB minimum: refused before anything is sent.
  expect(await dialog.locator('[data-action="save-retention"]').isDisabled()).toBe(true)
  await dialog.locator('[data-field="maxFileSize"]').fill('500')
  await dialog.locator('[data-action="save-retention"]').click()
  await dialog.locator('[data-retention-saved]').waitFor()
  const policy = JSON.parse(meta('retention_policy')!) as Record<string, unknown>
  expect(policy).toMatchObject({
    requestsMs: 3 * DAY,
    maxFileSizeBytes: 500 * 1024 ** 2,
    setBy: 'app',
  })
  expect(await dialog.locator('[data-kept="requests"]').textContent()).toContain('3 days')
  expect(await dialog.locator('[data-about-policy]').textContent()).toContain('this app')
  await dialog.evaluate((element) => (element.scrollTop = element.scrollHeight))
  await dialog.screenshot({ path: join(SCREENSHOTS, 'about-file-saved.png') })
  expect(problems.errors).toEqual([])
})
