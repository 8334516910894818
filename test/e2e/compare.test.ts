/**
 * Compare in the browser: a file with two releases (git tags) where one
 * endpoint got 40% slower, one 20% faster and one stayed: the view picks the
 * latest release against the one before, names them by tag, gives each
 * endpoint its verdict (busiest change first), takes other sides from its
 * selectors, periods (presets and custom days) and either test, shows an
 * endpoint's two distributions side by side, and opens its page from there.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { MetricsStore, type EndpointState, type PendingRequest } from 'routemeter/writer'
import { afterAll, beforeAll, expect, test } from 'vitest'
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
let dashboard: Dashboard
let browser: Browser
let page: Page
let problems: Problems

const SAME = { '/orders': 1, '/search': 1, '/health': 1 }
const RELEASES = [
  { name: 'a'.repeat(40), tags: ['v1.0.0'], daysAgo: 10, requests: 400, factor: SAME },
  // A commit on the way to v1.1.0, deployed briefly: 20 requests per endpoint.
  { name: 'c'.repeat(40), tags: [], daysAgo: 9, requests: 20, factor: SAME },
  {
    name: 'b'.repeat(40),
    tags: ['v1.1.0'],
    daysAgo: 2,
    requests: 400,
    factor: { '/orders': 1.4, '/search': 0.8, '/health': 1 },
  },
] as const

/**
 * Two releases, ten and two days ago (so that "the last 7 days against the 7
 * before" compares them too), each serving 400 requests per endpoint, and an
 * untagged commit between them that served 20; durations log-normal.
 */
function writeFile(path: string): void {
  let seed = 7
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed / 2 ** 31
  }
  const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000
  RELEASES.forEach((release) => {
    const start = hour - release.daysAgo * 86_400_000
    const store = new MetricsStore(
      path,
      { name: release.name, source: 'git', tags: [...release.tags] },
      start,
      undefined,
      'web-1',
    )
    const endpoints = Object.keys(release.factor).map((route): EndpointState => ({
      id: undefined,
      method: 'GET',
      route,
      level: 1,
      pendingLastRequested: 0,
    }))
    const rows: PendingRequest[] = []
    for (let i = 0; i < release.requests; i++) {
      for (const endpoint of endpoints) {
        const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
        const factor = release.factor[endpoint.route as keyof typeof release.factor]
        rows.push({
          endpoint,
          time: start + i * 1000,
          durationUs: Math.round(30_000 * factor * Math.exp(0.3 * normal)),
          status: 200,
          group: null,
          ip: null,
          aborted: 0,
        })
      }
    }
    store.write(rows, endpoints)
    store.close()
  })
}

beforeAll(async () => {
  temp = tempDir('routemeter-e2e-compare-')
  const file = join(temp.dir, 'releases.db')
  writeFile(file)
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

test('the latest release against the one before: a verdict per endpoint, by tag, busiest change first', async () => {
  await page.click('[data-tab="compare"]')
  await waitForPanel(page, 'compare')
  const selected = async (side: string) =>
    page.$eval(`[data-side="${side}"]`, (el) => {
      const select = el as HTMLSelectElement
      return select.options[select.selectedIndex]?.textContent ?? ''
    })
  expect(await selected('baseline')).toContain('v1.0.0')
  expect(await selected('candidate')).toContain('v1.1.0')
  const verdicts = await page.$$eval('[data-compare-row]', (rows) =>
    rows.map((row) => [row.getAttribute('data-compare-row'), row.getAttribute('data-verdict')]),
  )
  expect(verdicts).toEqual([
    ['/orders', 'slower'],
    ['/search', 'faster'],
    ['/health', 'no change'],
  ])
  expect(await page.textContent('[data-compare-summary]')).toContain(
    '1 slower · 1 faster · 1 unchanged',
  )
  await settle(page)
  await screenshot(page, 'compare')
  // The comparison saves as CSV, a row per endpoint in the table's order.
  const [csv] = await Promise.all([
    page.waitForEvent('download'),
    page.click('[data-action="save-comparison-csv"]'),
  ])
  const csvPath = join(temp.dir, 'comparison.csv')
  await csv.saveAs(csvPath)
  const csvLines = readFileSync(csvPath, 'utf8').trim().split('\r\n')
  expect(csvLines[0]).toMatch(/^method,route,verdict,exact,requests before,requests after,/)
  expect(csvLines.slice(1).map((line) => line.split(',').slice(1, 3).join(' '))).toEqual([
    '/orders slower',
    '/search faster',
    '/health no change',
  ])

  // The other way round: the old release as the candidate.
  const option = async (tag: string) =>
    page.$eval(
      '[data-side="baseline"]',
      (select, text) =>
        [...(select as HTMLSelectElement).options].find((o) => o.textContent?.includes(text))!
          .value,
      tag,
    )
  const ids = [await option('v1.0.0'), await option('v1.1.0')]
  await page.selectOption('[data-side="baseline"]', ids[1]!)
  await page.selectOption('[data-side="candidate"]', ids[0]!)
  await expect
    .poll(() => page.getAttribute('[data-compare-row="/orders"]', 'data-verdict'))
    .toBe('faster')

  // Two spans of time instead: every version in each; here the same two releases.
  await page.click('[data-compare-mode="time"]')
  await page.selectOption('[data-compare-preset]', 'week')
  await expect
    .poll(() => page.getAttribute('[data-compare-row="/orders"]', 'data-verdict'))
    .toBe('slower')
  expect(await page.textContent('[data-compare-summary]')).toContain(
    '1 slower · 1 faster · 1 unchanged',
  )
  await settle(page)
  await screenshot(page, 'compare-time')
  // Nothing in the last 48 hours: nothing to compare, said so.
  await page.selectOption('[data-compare-preset]', 'day')
  await expect.poll(() => page.locator('[data-compare-row]').count()).toBe(0)
  await waitForPanel(page, 'compare', 'empty')
  expect(await page.textContent('[data-panel="compare"]')).toContain(
    'No endpoint has requests in these periods',
  )
  // Two periods of the user's choice: the days of each release.
  await page.selectOption('[data-compare-preset]', 'custom')
  await page.waitForSelector('[data-compare-custom]')
  const day = (daysAgo: number) =>
    new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10)
  await page.click('[data-input="utc"]') // days in UTC, as the file was written
  for (const [input, value] of [
    ['baselineFrom', day(11)],
    ['baselineTo', day(9)],
    ['candidateFrom', day(3)],
    ['candidateTo', day(1)],
  ] as const) {
    await page.fill(`[data-input="${input}"]`, value)
  }
  await expect.poll(() => page.locator('[data-compare-row]').count()).toBe(3)
  await expect
    .poll(() => page.getAttribute('[data-compare-row="/orders"]', 'data-verdict'))
    .toBe('slower')
  // A period that ends before it starts is refused, said so.
  await page.fill('[data-input="candidateTo"]', day(5))
  await expect
    .poll(() => page.textContent('[data-panel="compare"]'))
    .toContain('A period ends before it starts')

  await page.click('[data-compare-mode="releases"]')
  await expect.poll(() => page.locator('[data-compare-row]').count()).toBe(3)
  // The sides chosen before are kept; back to the old release against the new.
  await page.selectOption('[data-side="baseline"]', ids[0]!)
  await page.selectOption('[data-side="candidate"]', ids[1]!)
  await expect
    .poll(() => page.getAttribute('[data-compare-row="/orders"]', 'data-verdict'))
    .toBe('slower')
  // Every request is still in the file: exact figures.
  expect(await page.getAttribute('[data-compare-row="/orders"]', 'data-exact')).toBe('true')
  await page.selectOption('[data-compare-test]', 'mann-whitney')
  await expect.poll(() => page.textContent('[data-compare-method]')).toContain('Mann-Whitney')
  expect(await page.getAttribute('[data-compare-row="/orders"]', 'data-verdict')).toBe('slower')
  expect(await page.getAttribute('[data-compare-row="/search"]', 'data-verdict')).toBe('faster')

  // A row shows both distributions side by side, and the way to the endpoint's page.
  await page.click('[data-compare-row="/orders"]')
  const detail = page.locator('[data-compare-detail="/orders"]')
  await detail.waitFor()
  const medians = JSON.parse(
    (await detail.locator('[data-chart="box-plot"]').getAttribute('data-medians-ms'))!,
  ) as number[]
  expect(medians).toHaveLength(2)
  // 40% slower, within the noise of 400 log-normal requests a side.
  expect(medians[1]! / medians[0]!).toBeGreaterThan(1.25)
  expect(medians[1]! / medians[0]!).toBeLessThan(1.6)
  await settle(page)
  await screenshot(page, 'compare-detail')
  await detail.locator('[data-action="open-endpoint"]').click()
  await page.waitForSelector('.endpoint-head')
  expect(page.url()).toMatch(/#\/endpoint\/\d+(\?.*)?$/)
  expect(problems.errors).toEqual([])
})

test("the version timeline marks each box's verdict against the one before, per version or per release", async () => {
  // On /orders' page (the test before ends there).
  await page.waitForSelector('.endpoint-head')
  await waitForPanel(page, 'versions')
  const panel = page.locator('[data-panel="versions"]')
  const timeline = async () => ({
    labels: JSON.parse(
      (await panel.locator('[data-chart="box-plot"]').getAttribute('data-labels'))!,
    ) as string[][],
    verdicts: JSON.parse((await panel.locator('[data-verdicts]').getAttribute('data-verdicts'))!),
  })
  // Every version: the brief commit between the releases has too few requests to judge either way.
  await expect
    .poll(async () => (await timeline()).verdicts)
    .toEqual([null, 'too few requests', 'too few requests'])
  // Without it, v1.1.0 is judged against v1.0.0: slower, said on its label.
  await panel.locator('[data-timeline]').selectOption('lasting')
  await expect.poll(async () => (await timeline()).verdicts).toEqual([null, 'slower'])
  expect(await panel.locator('[data-hidden-versions]').textContent()).toContain(
    '1 short-lived version left out',
  )
  const lasting = await timeline()
  expect(lasting.labels[1]![0]).toBe('v1.1.0')
  expect(lasting.labels[1]![2]).toMatch(/^▲ \d+% slower$/)
  // By release: the commit folds into the release it led to.
  await panel.locator('[data-timeline]').selectOption('releases')
  await expect
    .poll(async () => (await timeline()).labels.map((l) => l[0]))
    .toEqual(['v1.0.0', 'v1.1.0 (+1 commit)'])
  expect((await timeline()).verdicts).toEqual([null, 'slower'])
  await settle(page)
  await panel.screenshot({ path: join(SCREENSHOTS, 'versions-by-release.png') })
  expect(problems.errors).toEqual([])
})
