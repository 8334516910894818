/**
 * Every view of the built UI, in Chromium, against the web server showing a
 * known fixture (the demo generator, written through the collector's writer,
 * a month ending at FIXTURE_NOW). Expected numbers come from SQL on the file.
 */
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { buildMetricsFile, FIXTURE_NOW, tempDir, type TempDir } from '../fixtures/metrics-files.js'
import { DAY, Expected, formatCount, parseCount, startOfDay } from './expected.js'
import {
  dataOf,
  launchBrowser,
  openPage,
  screenshot,
  settle,
  startDashboard,
  waitForPanel,
  type Dashboard,
  type Problems,
} from './helpers.js'

let temp: TempDir
let file: string
let dashboard: Dashboard
let browser: Browser
let page: Page
let problems: Problems
let expected: Expected

// The UI opens on the last 30 days, in UTC (the page's time zone), ending with FIXTURE_NOW's day.
const TO = startOfDay(FIXTURE_NOW) + DAY
const FROM = TO - 30 * DAY

beforeAll(async () => {
  temp = tempDir('routemeter-e2e-')
  file = buildMetricsFile(temp.dir)
  expected = new Expected(file)
  dashboard = await startDashboard({ file, now: FIXTURE_NOW })
  browser = await launchBrowser()
  ;({ page, problems } = await openPage(browser, dashboard.url, { fixedNow: FIXTURE_NOW }))
})

afterAll(async () => {
  await browser?.close()
  await dashboard?.stop()
  expected?.close()
  temp?.cleanup()
})

async function show(view: string): Promise<void> {
  await page.click(`[data-tab="${view}"]`)
  await page.waitForSelector(`[data-view="${view}"]`)
  await settle(page)
}

describe('the views of a known metrics file', () => {
  test('the header and the date range describe the file and the last 30 days', async () => {
    await waitForPanel(page, 'overview')
    const requests = expected.count(0, Number.MAX_SAFE_INTEGER)
    await expect
      .poll(() => page.textContent('[data-file-summary] [data-stat="requests"]'))
      .toContain(`${formatCount(requests)} requests`)
    expect(await page.textContent('[data-range-shown]')).toBe('2026-10-22 → 2026-11-20')
    expect(await page.getAttribute('[data-preset="30d"]', 'aria-pressed')).toBe('true')
  })

  test('overview: one row per endpoint with its requests in the range and today', async () => {
    await settle(page)
    const endpoints = expected.endpoints()
    const inRange = expected.countsByEndpoint(FROM, TO)
    const today = expected.countsByEndpoint(TO - DAY, TO)
    const rows = page.locator('tr[data-endpoint-id]')
    expect(await rows.count()).toBe(endpoints.length)
    for (const endpoint of endpoints) {
      const row = page.locator(`tr[data-endpoint-id="${endpoint.id}"]`)
      expect(await row.getAttribute('data-endpoint')).toBe(endpoint.name)
      const rangeHits = await row.locator('[data-cell="range-hits"] .main-value').textContent()
      expect(parseCount(rangeHits), endpoint.name).toBe(inRange.get(endpoint.id) ?? 0)
      const todayHits = await row.locator('[data-cell="today-hits"] .main-value').textContent()
      expect(parseCount(todayHits), endpoint.name).toBe(today.get(endpoint.id) ?? 0)
      expect(await row.locator('.level-control').getAttribute('data-level')).toBe(
        String(endpoint.level),
      )
    }
    // Sorted by requests in the range, busiest first.
    const busiest = [...inRange.entries()].sort((a, b) => b[1] - a[1])[0]!
    expect(await rows.first().getAttribute('data-endpoint-id')).toBe(String(busiest[0]))
    await screenshot(page, '1-overview')
  })

  test('overview: sorting by name and searching', async () => {
    await page.click('[data-sort="name"]')
    const names = await page
      .locator('tr[data-endpoint-id]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-endpoint') ?? ''))
    expect(names).toEqual([...names].sort((a, b) => a.localeCompare(b, 'en')))
    expect(names.length).toBe(expected.endpoints().length)

    await page.fill('[data-input="search"]', 'orders')
    const matching = expected.endpoints().filter((e) => e.name.includes('orders'))
    await expect.poll(() => page.locator('tr[data-endpoint-id]').count()).toBe(matching.length)
    expect(await page.textContent('[data-stat="endpoint-count"]')).toContain(
      `${matching.length} endpoints`,
    )
    await page.fill('[data-input="search"]', '')
    await page.click('[data-sort="range.hits"]')
  })

  test('overview: a level chosen in the UI is written into the file', async () => {
    const endpoint = expected.endpoint('GET /api/orders')
    expect(expected.level(endpoint.id)).toBe(1)
    const control = page.locator(`tr[data-endpoint-id="${endpoint.id}"] .level-control`)
    await control.locator('button', { hasText: '3' }).click()
    await expect.poll(() => control.getAttribute('data-outcome')).toBe('saved')
    expect(await control.textContent()).toContain('✓ level 3')
    expect(await control.getAttribute('data-level')).toBe('3')
    const reread = new Expected(file)
    try {
      expect(reread.level(endpoint.id)).toBe(3)
    } finally {
      reread.close()
    }
  })

  test('utilization: one stacked series per endpoint with requests, summing to the range', async () => {
    await show('utilization')
    await waitForPanel(page, 'utilization')
    const counts = expected.countsByEndpoint(FROM, TO)
    const withRequests = [...counts.entries()].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1])
    const chart = '[data-panel="utilization"] [data-chart="stacked-bar"]'
    const names = await dataOf<string[]>(page, chart, 'series-names')
    const totals = await dataOf<number[]>(page, chart, 'totals')
    const shown = withRequests.slice(0, 12)
    expect(names.slice(0, shown.length)).toEqual(
      shown.map(([id]) => expected.endpoints().find((e) => e.id === id)!.name),
    )
    expect(totals.slice(0, shown.length)).toEqual(shown.map(([, n]) => n))
    if (withRequests.length > 12) {
      expect(names.at(-1)).toBe(`${withRequests.length - 12} other endpoints`)
      expect(totals.at(-1)).toBe(withRequests.slice(12).reduce((s, [, n]) => s + n, 0))
    }
    const total = expected.count(FROM, TO)
    expect(totals.reduce((a, b) => a + b, 0)).toBe(total)
    expect(await page.getAttribute(chart, 'data-days')).toBe('30')
    expect(await page.textContent('[data-panel="utilization"] [data-stat="total"]')).toBe(
      `${formatCount(total)} requests`,
    )
    // ApexCharts drew as many series, with a legend entry each.
    expect(await page.locator(`${chart} .apexcharts-bar-series .apexcharts-series`).count()).toBe(
      names.length,
    )
    expect(await page.locator(`${chart} .apexcharts-legend-text`).allTextContents()).toEqual(names)
    await screenshot(page, '2-utilization')
  })

  test('hour-of-day heatmap: 24 hours × 30 days, all endpoints then one', async () => {
    await show('heatmap')
    await waitForPanel(page, 'heatmap')
    const chart = '[data-panel="heatmap"] [data-chart="heatmap"]'
    expect(await page.getAttribute(chart, 'data-rows')).toBe('24')
    expect(await page.getAttribute(chart, 'data-columns')).toBe('30')
    expect(await dataOf<number[]>(page, chart, 'row-totals')).toEqual(
      expected.countsByHour(FROM, TO, 0),
    )
    expect(await page.locator(`${chart} .apexcharts-heatmap-rect`).count()).toBe(24 * 30)
    const labels = (
      await page.locator(`${chart} .apexcharts-yaxis-label`).allTextContents()
    ).filter(Boolean)
    expect(labels.length).toBe(24)
    expect(labels[0]).toBe('00:00')
    expect(labels.at(-1)).toBe('23:00')
    await screenshot(page, '3-heatmap')

    const orders = expected.endpoint('POST /api/orders')
    await page.selectOption('[data-panel="heatmap"] [data-input="endpoint"]', String(orders.id))
    await expect
      .poll(() => page.getAttribute(chart, 'data-total'))
      .toBe(String(expected.count(FROM, TO, orders.id)))
  })

  test('performance: a Tukey box per endpoint, with the medians the API computed', async () => {
    await show('performance')
    await waitForPanel(page, 'performance')
    const panel = page.locator('[data-panel="performance"]')
    expect(await panel.locator('.help').textContent()).toContain('Tukey')
    expect(await panel.locator('.help').textContent()).toContain('1.5 × IQR')
    const chart = '[data-panel="performance"] [data-chart="box-plot"]'
    const labels = (await dataOf<string[][]>(page, chart, 'labels')).map((l) => l[0])
    const medians = await dataOf<number[]>(page, chart, 'medians-ms')
    const withRequests = [...expected.countsByEndpoint(FROM, TO).entries()].filter(([, n]) => n > 0)
    expect(labels.length).toBe(withRequests.length)
    const boxes = await dashboard.service.performance({ from: FROM, to: TO, utcOffsetMinutes: 0 })
    for (const box of boxes.filter((b) => b.stats.count > 0)) {
      const name = expected.endpoints().find((e) => e.id === box.endpointId)!.name
      expect(medians[labels.indexOf(name)], name).toBeCloseTo(box.stats.median / 1000, 6)
    }
    // Slowest median first; durations differ by orders of magnitude, so the axis is logarithmic.
    expect(labels[0]).toBe('GET /api/reports/export')
    expect(await panel.locator('[data-input="log-scale"]').isChecked()).toBe(true)
    expect(await panel.locator('.apexcharts-xaxis-title').textContent()).toContain('log scale')
    expect(await panel.locator('.apexcharts-yaxis-label').allTextContents()).toEqual(labels)
    await screenshot(page, '4-performance')
  })

  test('versions: one box per version in order, labelled with version and first-seen day', async () => {
    await show('versions')
    const search = expected.endpoint('GET /api/products/search')
    await page.selectOption('[data-panel="versions"] [data-input="endpoint"]', String(search.id))
    await waitForPanel(page, 'versions')
    await settle(page)
    const versions = expected.versionsOf(search.id, FROM, TO)
    expect(versions.map((v) => v.name)).toEqual(['1.4.0', '1.5.0', '1.5.1'])
    const chart = '[data-panel="versions"] [data-chart="box-plot"]'
    await expect
      .poll(async () => (await dataOf<string[][]>(page, chart, 'labels')).map((l) => l.slice(0, 2)))
      .toEqual(versions.map((v) => [v.name, new Date(v.firstSeen).toISOString().slice(0, 10)]))
    // 1.5.0 dropped an index and 1.5.1 put it back: each marked against the version before.
    const marks = (await dataOf<string[][]>(page, chart, 'labels')).map((l) => l[2] ?? '')
    expect(marks[0]).toBe('')
    expect(marks[1]).toMatch(/^▲ \d+% slower$/)
    expect(marks[2]).toMatch(/^▼ \d+% faster$/)
    const evolution = await dashboard.service.versionEvolution({
      from: FROM,
      to: TO,
      utcOffsetMinutes: 0,
      endpointId: search.id,
    })
    expect(await dataOf<number[]>(page, chart, 'medians-ms')).toEqual(
      evolution.boxes.map((b) => (b === null ? null : b.median / 1000)),
    )
    // 1.5.0 dropped an index: its median is the slowest.
    const medians = await dataOf<number[]>(page, chart, 'medians-ms')
    expect(Math.max(...medians)).toBe(medians[1])

    const heatmap = '[data-panel="version-utilization"] [data-chart="heatmap"]'
    await waitForPanel(page, 'version-utilization')
    expect(await page.getAttribute(heatmap, 'data-columns')).toBe('3')
    expect(Number(await page.getAttribute(heatmap, 'data-total'))).toBe(expected.count(FROM, TO))
    await screenshot(page, '5-versions')
  })

  test('users and IPs: the busiest ten, a box each, and medians per version', async () => {
    await show('clients')
    const product = expected.endpoint('GET /api/products/:id')
    await page.selectOption('[data-panel^="clients"] [data-input="endpoint"]', String(product.id))
    await waitForPanel(page, 'clients-user')
    await settle(page)
    const chart = '[data-panel="clients-user"] [data-chart="box-plot"]'
    const users = expected.busiestClients('user', product.id, FROM, TO)
    await expect
      .poll(async () => (await dataOf<string[][]>(page, chart, 'labels')).map((l) => l[0]))
      .toEqual(users.map((u) => u.name))
    expect(await dataOf<number[]>(page, chart, 'counts')).toEqual(users.map((u) => u.n))
    const heatmap = '[data-panel="clients-user"] [data-chart="heatmap"]'
    expect(await dataOf<string[]>(page, heatmap, 'row-names')).toEqual(users.map((u) => u.name))
    expect(await page.getAttribute(heatmap, 'data-columns')).toBe('3')
    await screenshot(page, '6-users')

    await page.click('[data-kind="ip"]')
    await waitForPanel(page, 'clients-ip')
    await settle(page)
    const ips = expected.busiestClients('ip', product.id, FROM, TO)
    await expect
      .poll(async () =>
        (
          await dataOf<string[][]>(
            page,
            '[data-panel="clients-ip"] [data-chart="box-plot"]',
            'labels',
          )
        ).map((l) => l[0]),
      )
      .toEqual(ips.map((ip) => ip.name))
    await screenshot(page, '6-ips')

    // Others are selectable: add the quietest IP to the busiest ten, then go back.
    const allIps = expected.busiestClients('ip', product.id, FROM, TO, 500)
    expect(allIps.length).toBeGreaterThan(10)
    const quietest = allIps.at(-1)!.name
    await page.click('[data-panel="clients-ip"] [data-control="client-chooser"]')
    await page
      .locator('[data-panel="clients-ip"] .chooser-body li', { hasText: quietest })
      .locator('input')
      .check()
    const ipChart = '[data-panel="clients-ip"] [data-chart="box-plot"]'
    await expect
      .poll(async () => (await dataOf<string[][]>(page, ipChart, 'labels')).map((l) => l[0]))
      .toEqual([...ips.map((ip) => ip.name), quietest])
    expect(
      await page.textContent('[data-panel="clients-ip"] [data-control="client-chooser"]'),
    ).toContain(`11 chosen of ${allIps.length} IPs`)
    await page.click(
      '[data-panel="clients-ip"] .chooser-body button:has-text("Back to the busiest")',
    )
    await expect
      .poll(async () => (await dataOf<string[][]>(page, ipChart, 'labels')).length)
      .toBe(10)
    await page.click('[data-kind="user"]')
  })

  test('status codes: one series per code over the days, and the latest errors', async () => {
    await show('status')
    await waitForPanel(page, 'status')
    const chart = '[data-panel="status"] [data-chart="stacked-bar"]'
    const statuses = [...expected.countsByStatus(FROM, TO).entries()].sort((a, b) => a[0] - b[0])
    expect(await dataOf<string[]>(page, chart, 'series-names')).toEqual(
      statuses.map(([s]) => (s === 0 ? 'aborted (no status)' : String(s))),
    )
    expect(await dataOf<number[]>(page, chart, 'totals')).toEqual(statuses.map(([, n]) => n))
    const errors = await dashboard.service.latestErrors({ from: FROM, to: TO, utcOffsetMinutes: 0 })
    expect(errors.length).toBe(50)
    expect(await page.locator('.errors-table tbody tr').count()).toBe(15)
    await page.click('[data-action="more-errors"]')
    expect(await page.locator('.errors-table tbody tr').count()).toBe(errors.length)
    const newest = errors[0]!
    expect(await page.locator('.errors-table tbody tr').first().textContent()).toContain(
      new Date(newest.time).toISOString().slice(0, 19).replace('T', ' '),
    )
    const e4 = statuses.filter(([s]) => s >= 400 && s < 500).reduce((a, [, n]) => a + n, 0)
    expect(await page.textContent('[data-panel="status"] [data-stat="4xx"]')).toBe(
      `${formatCount(e4)} 4xx`,
    )
    await screenshot(page, '7-status')
    // Only the errors: the 2xx bars no longer dwarf them.
    await page.check('[data-input="errors-only"]')
    await expect
      .poll(() => dataOf<string[]>(page, chart, 'series-names'))
      .toEqual(
        statuses
          .filter(([s]) => s === 0 || s >= 400)
          .map(([s]) => (s === 0 ? 'aborted (no status)' : String(s))),
      )
    await settle(page)
    await screenshot(page, '7-status-errors-only')
    await page.uncheck('[data-input="errors-only"]')

    const orders = expected.endpoint('POST /api/orders')
    await page.selectOption('[data-panel="status"] [data-input="endpoint"]', String(orders.id))
    const codes = [...expected.countsByStatus(FROM, TO, orders.id).keys()].sort((a, b) => a - b)
    await expect
      .poll(() => dataOf<string[]>(page, chart, 'series-names'))
      .toEqual(codes.map((s) => (s === 0 ? 'aborted (no status)' : String(s))))
    // The payment provider's failures are there: created orders and more than one 5xx code.
    expect(codes).toContain(201)
    expect(codes.filter((s) => s >= 500).length).toBeGreaterThanOrEqual(2)
  })

  test('endpoint page: one endpoint with its level, totals and every chart', async () => {
    await show('overview')
    const search = expected.endpoint('GET /api/products/search')
    await page.click(`tr[data-endpoint-id="${search.id}"] .endpoint-link`)
    await page.waitForSelector(`[data-endpoint-page="${search.id}"]`)
    expect(new URL(page.url()).hash).toBe(`#/endpoint/${search.id}`)
    await settle(page)
    expect(await page.textContent('.endpoint-title h2')).toContain('/api/products/search')
    expect(parseCount(await page.textContent('[data-total="Range"] .total-value'))).toBe(
      expected.count(FROM, TO, search.id),
    )
    for (const panel of ['performance', 'versions', 'heatmap', 'clients-user', 'status']) {
      expect(await page.getAttribute(`[data-panel="${panel}"]`, 'data-state'), panel).toBe('ready')
    }
    expect(
      Number(
        await page.getAttribute('[data-panel="heatmap"] [data-chart="heatmap"]', 'data-total'),
      ),
    ).toBe(expected.count(FROM, TO, search.id))
    // Back and forward work like pages.
    await page.goBack()
    await page.waitForSelector('[data-view="overview"]')
    await page.goForward()
    await page.waitForSelector(`[data-endpoint-page="${search.id}"]`)
    await settle(page)
    await screenshot(page, '8-endpoint')
  })

  test('the compared selection filters the other views', async () => {
    await show('overview')
    const picks = ['GET /api/orders', 'POST /api/orders'].map((n) => expected.endpoint(n))
    for (const pick of picks) {
      await page.check(`tr[data-endpoint-id="${pick.id}"] [data-input="select"]`)
    }
    await page.waitForSelector('[data-selection]')
    await show('utilization')
    const chart = '[data-panel="utilization"] [data-chart="stacked-bar"]'
    await expect
      .poll(() => dataOf<string[]>(page, chart, 'series-names'))
      .toEqual(
        [...picks]
          .sort((a, b) => expected.count(FROM, TO, b.id) - expected.count(FROM, TO, a.id))
          .map((p) => p.name),
      )
    await page.click('[data-action="clear-selection"]')
    await expect.poll(() => page.locator('[data-selection]').count()).toBe(0)
  })

  test('a range without requests shows that, not an empty chart', async () => {
    await page.click('[data-preset="custom"]')
    await page.fill('[data-input="from"]', '2030-01-01')
    await page.fill('[data-input="to"]', '2030-01-31')
    await waitForPanel(page, 'utilization', 'empty')
    expect(await page.textContent('[data-panel="utilization"] .state-empty')).toContain(
      'No requests in this range.',
    )
    await screenshot(page, 'empty-range')
    await page.click('[data-preset="30d"]')
    await waitForPanel(page, 'utilization')
  })

  test('the UTC switch moves the hours of the heatmap', async () => {
    const { page: tokyo, context } = await openPage(browser, dashboard.url, {
      timezoneId: 'Asia/Tokyo',
      fixedNow: FIXTURE_NOW,
      hash: '#/heatmap',
    })
    try {
      await waitForPanel(tokyo, 'heatmap')
      expect(await tokyo.textContent('.zone')).toBe('local time, UTC+09:00')
      const chart = '[data-panel="heatmap"] [data-chart="heatmap"]'
      const localTo = startOfDay(FIXTURE_NOW, 540) + DAY
      expect(await dataOf<number[]>(tokyo, chart, 'row-totals')).toEqual(
        expected.countsByHour(localTo - 30 * DAY, localTo, 540),
      )
      await tokyo.check('[data-input="utc"]')
      await expect
        .poll(() => dataOf<number[]>(tokyo, chart, 'row-totals'))
        .toEqual(expected.countsByHour(FROM, TO, 0))
      expect(await tokyo.textContent('.zone')).toBe('UTC')
    } finally {
      await context.close()
    }
  })

  test('no page error and no blocked resource (CSP) on the way', () => {
    expect(problems.errors).toEqual([])
  })
})
