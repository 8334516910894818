/**
 * Level 3 in the browser: an endpoint whose profiles in two releases differ
 * (v1.1.0 spends 40% of its time in a new function, slowSerialize). The
 * endpoint page draws the flame graph with every sample, searches and zooms,
 * names what the new release spends more and less on against the old one,
 * and saves a `.cpuprofile` that parses as one.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Browser, Page } from 'playwright-core'
import { encodeProfile, type FoldedProfile } from 'routemeter/profiles'
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

const FRAMES = {
  handler: { name: 'getProduct', url: 'file:///srv/app/routes/products.js', line: 12 },
  render: { name: 'renderPage', url: 'file:///srv/app/views/page.js', line: 40 },
  user: { name: 'loadUser', url: 'file:///srv/app/users.js', line: 7 },
  serialize: { name: 'slowSerialize', url: 'file:///srv/app/serialize.js', line: 3 },
}
type FrameName = keyof typeof FRAMES

/** A profile of the handler calling the given functions, samples per function. */
function profileOf(parts: Partial<Record<FrameName, number>>): FoldedProfile {
  const names = Object.keys(FRAMES) as FrameName[]
  return {
    intervalUs: 5000,
    frames: names.map((n) => FRAMES[n]),
    stacks: Object.entries(parts).map(([name, samples]) => [
      [0, names.indexOf(name as FrameName)],
      samples!,
    ]),
  }
}

const RELEASES = [
  { name: 'a'.repeat(40), tag: 'v1.0.0', daysAgo: 6, parts: { render: 70, user: 30 } },
  {
    name: 'b'.repeat(40),
    tag: 'v1.1.0',
    daysAgo: 2,
    parts: { render: 40, user: 20, serialize: 40 },
  },
] as const
/** Hours of profiles per release, each with the release's parts. */
const HOURS = 10

function writeFile(path: string): void {
  const hour = Math.floor(Date.now() / 3_600_000)
  RELEASES.forEach((release) => {
    const start = (hour - release.daysAgo * 24) * 3_600_000
    const store = new MetricsStore(
      path,
      { name: release.name, source: 'git', tags: [release.tag] },
      start,
      undefined,
      'web-1',
    )
    const endpoint: EndpointState = {
      id: undefined,
      method: 'GET',
      route: '/products/:id',
      level: 3,
      pendingLastRequested: 0,
    }
    const rows: PendingRequest[] = Array.from({ length: 50 }, (_, i) => ({
      endpoint,
      time: start + i * 60_000,
      durationUs: 20_000,
      status: 200,
      group: null,
      ip: null,
      aborted: 0,
    }))
    store.write(rows, [endpoint])
    store.close()
  })
  const db = new Database(path)
  const versionId = (name: string) =>
    db.prepare('SELECT id FROM version WHERE name = ?').pluck().get(name) as number
  const insert = db.prepare('INSERT INTO profile VALUES (1, ?, ?, 1, ?, 5000, ?)')
  for (const release of RELEASES) {
    const profile = profileOf(release.parts)
    for (let h = 0; h < HOURS; h++) {
      insert.run(
        hour - release.daysAgo * 24 + h,
        versionId(release.name),
        100,
        encodeProfile(profile),
      )
    }
  }
  // An outlier of v1.1.0 with its own samples: most of them in slowSerialize.
  const context = {
    headers: {},
    params: { id: '7' },
    bodyBytes: null,
    operations: [],
    operationsDropped: 0,
    process: {
      cpuPercent: 90,
      rssBytes: 1e8,
      heapUsedBytes: 5e7,
      heapTotalBytes: 8e7,
      externalBytes: 1e6,
      loopDelayMaxMs: 180,
      loopDelayP99Ms: 150,
      loopUtilization: 0.9,
      inFlight: 1,
      inFlightEndpoint: 1,
    },
    loopBlockedMs: 190,
  }
  db.prepare(
    `INSERT INTO outlier (endpoint_id, time, duration_us, threshold_us, caught_us, status,
       version_id, node_id, method, url, cause, cause_detail, context, profile)
     VALUES (1, ?, 200000, 50000, 200000, 200, ?, 1, 'GET', '/products/7', 'event-loop',
       'event loop blocked for 190 ms', ?, ?)`,
  ).run(
    (hour - 1) * 3_600_000,
    versionId(RELEASES[1].name),
    JSON.stringify(context),
    encodeProfile(profileOf({ serialize: 36, render: 4 })),
  )
  db.close()
}

beforeAll(async () => {
  temp = tempDir('routemeter-e2e-profiles-')
  const file = join(temp.dir, 'profiles.db')
  writeFile(file)
  dashboard = await startDashboard({ file })
  browser = await launchBrowser()
  ;({ page, problems } = await openPage(browser, dashboard.url, { hash: '#/endpoint/1' }))
  await waitForPanel(page, 'profile')
})

afterAll(async () => {
  await browser?.close()
  await dashboard?.stop()
  temp?.cleanup()
})

test('the flame graph of every sample, searched and zoomed', async () => {
  const flame = page.locator('[data-panel="profile"] [data-chart="flame-graph"]')
  // Two releases x 10 hours x 100 samples.
  expect(await flame.getAttribute('data-samples')).toBe(String(2 * HOURS * 100))
  await page.fill('[data-profile-search]', 'slowSerialize')
  // 40 of v1.1.0's 100 samples an hour, none of v1.0.0's: 20%.
  await expect.poll(() => flame.getAttribute('data-matched')).toBe('0.2000')
  await settle(page)
  await page.locator('[data-panel="profile"]').screenshot({
    path: join(SCREENSHOTS, 'profile-search.png'),
  })
  await page.fill('[data-profile-search]', '')
  await flame.locator('[data-frame="renderPage"]').click()
  await expect.poll(() => flame.getAttribute('data-focus')).toBe('renderPage')
  await flame.locator('[data-action="reset-zoom"]').click()
  await expect.poll(() => flame.getAttribute('data-focus')).toBe('all samples')
})

test('a release against the one before: which functions take more and less of the time', async () => {
  const options = await page.$$eval('[data-profile-version] option', (list) =>
    list.map((o) => [(o as HTMLOptionElement).value, o.textContent ?? ''] as const),
  )
  const id = (tag: string) => options.find(([, text]) => text.includes(tag))![0]!
  await page.selectOption('[data-profile-version]', id('v1.1.0'))
  await page.selectOption('[data-profile-baseline]', id('v1.0.0'))
  const change = (name: string) =>
    page.getAttribute(
      `[data-profile-functions] [data-function="${name}"] [data-change]`,
      'data-change',
    )
  await expect.poll(() => change('slowSerialize')).toBe('40.0')
  expect(await change('renderPage')).toBe('-30.0')
  expect(await change('loadUser')).toBe('-10.0')
  expect(await change('getProduct')).toBe('0.0')
  await settle(page)
  await page.locator('[data-panel="profile"]').screenshot({
    path: join(SCREENSHOTS, 'profile-diff.png'),
  })
  await screenshot(page, 'endpoint-profile')
})

test("an outlier's own profile in its detail, saved as a .cpuprofile", async () => {
  await page.locator('[data-panel="outliers"] [data-outlier-row]').first().click()
  const own = page.locator('[data-outlier-profile] [data-chart="flame-graph"]')
  await own.waitFor()
  expect(await own.getAttribute('data-samples')).toBe('40')
  expect(await own.locator('[data-frame="slowSerialize"]').count()).toBe(1)
  await settle(page)
  await page
    .locator('.outlier-detail')
    .screenshot({ path: join(SCREENSHOTS, 'outlier-profile.png') })
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('[data-action="save-outlier-cpuprofile"]'),
  ])
  expect(download.suggestedFilename()).toMatch(/^outlier-\d+\.cpuprofile$/)
  const path = join(temp.dir, 'outlier.cpuprofile')
  await download.saveAs(path)
  expect((JSON.parse(readFileSync(path, 'utf8')) as { samples: number[] }).samples).toHaveLength(40)
})

test('the profile shown saves as a .cpuprofile', async () => {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('[data-action="save-cpuprofile"]'),
  ])
  expect(download.suggestedFilename()).toBe('GET_products_id.cpuprofile')
  const path = join(temp.dir, 'saved.cpuprofile')
  await download.saveAs(path)
  const saved = JSON.parse(readFileSync(path, 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string }; children: number[] }>
    samples: number[]
    timeDeltas: number[]
  }
  // v1.1.0 only (the version chosen): 10 hours x 100 samples.
  expect(saved.samples).toHaveLength(HOURS * 100)
  expect(saved.timeDeltas).toHaveLength(saved.samples.length)
  const ids = new Set(saved.nodes.map((n) => n.id))
  expect(saved.samples.every((s) => ids.has(s))).toBe(true)
  expect(saved.nodes.map((n) => n.callFrame.functionName)).toContain('slowSerialize')
  expect(problems.errors).toEqual([])
})
