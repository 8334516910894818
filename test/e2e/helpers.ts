/**
 * End-to-end plumbing: the built renderer (out/renderer) served by the real
 * web server around a real DashboardService, looked at in Debian's Chromium.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { ROOT } from '../../scripts/electron-env.mjs'
import { DashboardService } from '../../src-main/services/dashboard.js'
import { startWebServer } from '../../src-main/web/server.js'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium'
export const STATIC_DIR = join(ROOT, 'out', 'renderer')
export const SCREENSHOTS = join(ROOT, 'test-results', 'screenshots')

/** `extraArgs`: more Chromium switches, e.g. `--host-resolver-rules` for a name that resolves here. */
export async function launchBrowser(extraArgs: string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is missing at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`,
    )
  }
  // Playwright gives every launch a fresh, temporary profile (--user-data-dir).
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  })
}

export interface Dashboard {
  url: string
  service: DashboardService
  stop(): Promise<void>
}

/** The web-mode server on a free port, showing `file` (none: the "no file" state). */
export async function startDashboard(
  options: { file?: string; now?: number; allowOpen?: boolean } = {},
): Promise<Dashboard> {
  const now = options.now
  const service = new DashboardService({
    ...(now === undefined ? {} : { now: () => now }),
    watch: { debounceMs: 50, pollIntervalMs: 250 },
    minChangedIntervalMs: 200,
  })
  if (options.file !== undefined) await service.openFile({ path: options.file })
  const server = await startWebServer({
    service,
    port: 0,
    staticDir: STATIC_DIR,
    allowOpen: options.allowOpen ?? false,
  })
  return {
    url: server.url,
    service,
    async stop() {
      await server.close()
      await service.close()
    },
  }
}

export interface Problems {
  /** uncaught exceptions and console errors of the page (CSP violations included) */
  errors: string[]
}

/** A page in its own context: a time zone, and optionally a clock stopped at `fixedNow`. */
export async function openPage(
  browser: Browser,
  url: string,
  options: { timezoneId?: string; fixedNow?: number; hash?: string } = {},
): Promise<{ page: Page; context: BrowserContext; problems: Problems }> {
  const context = await browser.newContext({
    viewport: { width: 1440, height: 1000 },
    timezoneId: options.timezoneId ?? 'UTC',
    locale: 'en-US',
  })
  const page = await context.newPage()
  const problems: Problems = { errors: [] }
  page.on('pageerror', (error) => problems.errors.push(`pageerror: ${error.message}`))
  page.on('console', (message) => {
    if (message.type() === 'error') problems.errors.push(`console: ${message.text()}`)
  })
  if (options.fixedNow !== undefined) await page.clock.setFixedTime(options.fixedNow)
  await page.goto(`${url}${options.hash ?? ''}`)
  return { page, context, problems }
}

/** Waits until the panel has its data (or its empty/error state) and nothing is loading. */
export async function waitForPanel(page: Page, name: string, state = 'ready'): Promise<void> {
  const busy = state === 'loading' ? '' : '[data-busy="false"]'
  await page.waitForSelector(`[data-panel="${name}"][data-state="${state}"]${busy}`)
}

/** Waits for every panel on screen to settle, and for ApexCharts to draw. */
export async function settle(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const panels = [...document.querySelectorAll('[data-panel]')]
    return (
      panels.length > 0 &&
      panels.every(
        (p) => p.getAttribute('data-state') !== 'loading' && p.getAttribute('data-busy') !== 'true',
      ) &&
      [...document.querySelectorAll('.apex-chart')].every((c) => c.querySelector('svg') !== null)
    )
  })
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true })
  const path = join(SCREENSHOTS, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}

/** A data attribute of the first element matching `selector`, parsed as JSON. */
export async function dataOf<T>(page: Page, selector: string, attribute: string): Promise<T> {
  const value = await page.locator(selector).first().getAttribute(`data-${attribute}`)
  if (value === null) throw new Error(`${selector} has no data-${attribute}`)
  return JSON.parse(value) as T
}
