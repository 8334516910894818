/**
 * A file with thousands of endpoints: the overview pages and searches them,
 * and the charts keep to what can be read.
 */
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { MetricsStore, type EndpointState, type PendingRequest } from 'routemeter/writer'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { tempDir, type TempDir } from '../fixtures/metrics-files.js'
import {
  launchBrowser,
  openPage,
  screenshot,
  settle,
  startDashboard,
  waitForPanel,
} from './helpers.js'

const ENDPOINTS = 3000

let temp: TempDir
let file: string
let browser: Browser

/** Writes ENDPOINTS endpoints through the collector's writer; endpoint i gets (i % 3) + 1 requests. */
function writeManyEndpoints(path: string): void {
  const now = Date.now()
  const store = new MetricsStore(path, { name: '1.0.0', source: 'option' }, now - 60_000)
  try {
    const endpoints: EndpointState[] = []
    const requests: PendingRequest[] = []
    for (let i = 1; i <= ENDPOINTS; i++) {
      const endpoint: EndpointState = {
        id: undefined,
        method: i % 5 === 0 ? 'POST' : 'GET',
        route: `/api/resource-${String(i).padStart(4, '0')}/:id`,
        level: 1,
        pendingLastRequested: now - i * 1000,
      }
      endpoints.push(endpoint)
      for (let r = 0; r <= i % 3; r++) {
        requests.push({
          endpoint,
          time: now - i * 1000 - r,
          durationUs: 1000 + ((i * 37 + r * 101) % 5000),
          status: 200,
          group: null,
          ip: null,
          aborted: 0,
        })
      }
    }
    store.write(requests, endpoints, [], now)
  } finally {
    store.close()
  }
}

beforeAll(async () => {
  temp = tempDir('routemeter-e2e-many-')
  file = join(temp.dir, 'many.db')
  writeManyEndpoints(file)
  browser = await launchBrowser()
})

afterAll(async () => {
  await browser?.close()
  temp?.cleanup()
})

test('thousands of endpoints: paged, searchable, sortable; charts show the busiest', async () => {
  const dashboard = await startDashboard({ file })
  const { page, context, problems } = await openPage(browser, dashboard.url)
  try {
    await waitForPanel(page, 'overview')
    expect(await page.textContent('[data-stat="endpoint-count"]')).toContain('3,000 endpoints')
    expect(await page.locator('tr[data-endpoint-id]').count()).toBe(50)
    expect(await page.textContent('[data-stat="page"]')).toBe('page 1 of 60')
    await page.click('.pager button:has-text("Next")')
    expect(await page.textContent('[data-stat="page"]')).toBe('page 2 of 60')

    await page.click('[data-sort="name"]')
    expect(await page.locator('tr[data-endpoint-id]').first().getAttribute('data-endpoint')).toBe(
      'GET /api/resource-0001/:id',
    )
    await page.fill('[data-input="search"]', 'resource-2999')
    await expect.poll(() => page.locator('tr[data-endpoint-id]').count()).toBe(1)
    expect(
      await page.locator('tr[data-endpoint-id] [data-cell="range-hits"] .main-value').textContent(),
    ).toBe(String((2999 % 3) + 1))
    await page.fill('[data-input="search"]', '')
    await screenshot(page, 'many-endpoints-overview')

    await page.click('[data-tab="utilization"]')
    await waitForPanel(page, 'utilization')
    const names = JSON.parse(
      (await page.getAttribute('[data-chart="stacked-bar"]', 'data-series-names')) ?? '[]',
    ) as string[]
    expect(names).toHaveLength(13)
    expect(names.at(-1)).toBe(`${ENDPOINTS - 12} other endpoints`)

    await page.click('[data-tab="performance"]')
    await waitForPanel(page, 'performance')
    expect(await page.getAttribute('[data-chart="box-plot"]', 'data-boxes')).toBe('30')
    expect(await page.textContent('[data-panel="performance"] .panel-foot')).toContain(
      'Showing 30 of 3,000 endpoints',
    )
    await settle(page)
    expect(problems.errors).toEqual([])
  } finally {
    await context.close()
    await dashboard.stop()
  }
})
