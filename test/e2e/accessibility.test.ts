/**
 * Accessibility: axe-core (Deque's rules engine) on every view of a known
 * file in Chromium; no critical or serious violation may remain, nor a page
 * without its heading or with content outside the landmarks.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { buildMetricsFile, FIXTURE_NOW, tempDir, type TempDir } from '../fixtures/metrics-files.js'
import { launchBrowser, settle, startDashboard, type Dashboard } from './helpers.js'

const require = createRequire(import.meta.url)
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')

let temp: TempDir
let dashboard: Dashboard
let browser: Browser

beforeAll(async () => {
  temp = tempDir('routemeter-e2e-a11y-')
  dashboard = await startDashboard({ file: buildMetricsFile(temp.dir), now: FIXTURE_NOW })
  browser = await launchBrowser()
})

afterAll(async () => {
  await browser?.close()
  await dashboard?.stop()
  temp?.cleanup()
})

interface Violation {
  id: string
  impact: string | null
  help: string
  nodes: Array<{ target: string[] }>
}

/** axe's critical and serious violations on the page as it is. */
async function violations(page: Page): Promise<string[]> {
  // evaluate runs outside the page's CSP, which allows no injected script
  await page.evaluate(AXE)
  const found = (await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(): Promise<{ violations: unknown[] }> } }).axe
    return (await axe.run()).violations
  })) as Violation[]
  return found
    .filter(
      (v) =>
        v.impact === 'critical' ||
        v.impact === 'serious' ||
        v.id === 'page-has-heading-one' ||
        v.id === 'region',
    )
    .map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help} — ${v.nodes
          .slice(0, 3)
          .map((n) => n.target.join(' '))
          .join(', ')}`,
    )
}

const VIEWS = [
  'overview',
  'utilization',
  'heatmap',
  'performance',
  'versions',
  'clients',
  'status',
  'outliers',
  'compare',
] as const

test('no critical or serious violation on any view or the endpoint page', async () => {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } })
  const page = await context.newPage()
  await page.clock.setFixedTime(FIXTURE_NOW)
  const found: string[] = []
  for (const view of VIEWS) {
    await page.goto(`${dashboard.url}#/${view}`)
    await page.waitForSelector(`[data-tab="${view}"].active`)
    await settle(page)
    for (const v of await violations(page)) found.push(`${view}: ${v}`)
  }
  await page.goto(`${dashboard.url}#/endpoint/1`)
  await page.waitForSelector('.endpoint-head')
  await settle(page)
  for (const v of await violations(page)) found.push(`endpoint: ${v}`)
  await context.close()
  expect(found).toEqual([])
})
