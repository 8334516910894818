/**
 * DNS rebinding against web mode, as a browser meets it: a page of another
 * site whose name then resolves to 127.0.0.1 calls the dashboard's API from
 * its own origin. Chromium resolves the attacker's name to loopback
 * (--host-resolver-rules), so the page and every request it makes reach the
 * real web-mode server under the attacker's name.
 */
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { buildMetricsFile, FIXTURE_NOW, tempDir, type TempDir } from '../fixtures/metrics-files.js'
import { launchBrowser, startDashboard, type Dashboard } from './helpers.js'

const ATTACKER = '127.attacker.test'
let temp: TempDir
let browser: Browser
let dashboard: Dashboard

beforeAll(async () => {
  temp = tempDir('routemeter-e2e-rebinding-')
  dashboard = await startDashboard({
    file: buildMetricsFile(temp.dir, { requests: 500 }),
    now: FIXTURE_NOW,
    allowOpen: true,
  })
  browser = await launchBrowser([`--host-resolver-rules=MAP ${ATTACKER} 127.0.0.1`])
})

afterAll(async () => {
  await browser?.close()
  await dashboard?.stop()
  temp?.cleanup()
})

test('a page on a name that resolves to 127.0.0.1 can neither read nor change anything', async () => {
  const port = new URL(dashboard.url).port
  const origin = `http://${ATTACKER}:${port}`
  const before = (await (
    await fetch(
      new URL('api/endpoints?from=0&to=' + FIXTURE_NOW + '&utcOffsetMinutes=0', dashboard.url),
    )
  ).json()) as Array<{ id: number; level: number }>
  const target = before[0]!
  const context = await browser.newContext()
  const page = await context.newPage()
  // The attacker's page, once the name points here: the dashboard must not answer it.
  const document = await page.goto(`${origin}/`)
  expect(document?.status()).toBe(421)
  const results = await page.evaluate(
    async ({ id, level }) => {
      const info = await fetch('/api/info')
      const setLevel = await fetch('/api/setLevel', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ endpointId: id, level }),
      })
      const open = await fetch('/api/openFile', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ path: '/etc/passwd' }),
      })
      return {
        info: info.status,
        infoBody: await info.text(),
        setLevel: setLevel.status,
        open: open.status,
      }
    },
    { id: target.id, level: target.level === 3 ? 0 : 3 },
  )
  await context.close()
  expect(results).toMatchObject({ info: 421, setLevel: 421, open: 421 })
  expect(results.infoBody).not.toContain('requests')
  const after = (await (
    await fetch(
      new URL('api/endpoints?from=0&to=' + FIXTURE_NOW + '&utcOffsetMinutes=0', dashboard.url),
    )
  ).json()) as Array<{ id: number; level: number }>
  expect(after.find((row) => row.id === target.id)?.level).toBe(target.level)
  // The same browser still reaches the dashboard under its own address.
  const own = await browser.newPage()
  const response = await own.goto(new URL('api/info', dashboard.url).href)
  expect(response?.status()).toBe(200)
  await own.close()
})
