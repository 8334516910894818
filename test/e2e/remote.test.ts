/**
 * Servers and nodes, the whole story in Chromium, through web mode: a person adds a
 * server with its URL and token, watches the download's progress bar,
 * explores the pulled copy, turns an endpoint's level down on that server,
 * then opens two nodes (a Koa and an Express process) as one service with a
 * per-node split. The servers are real processes with the collector's remote
 * option on; the first one sits behind a slow link so the progress can be seen.
 */
import Database from 'better-sqlite3'
import { fork, type ChildProcess } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { DashboardService } from '../../src-main/services/dashboard.js'
import { RemoteClient } from '../../src-main/services/sources/remote.js'
import { SourcesService } from '../../src-main/services/sources/service.js'
import { startWebServer, type WebServer } from '../../src-main/web/server.js'
import { tempDir, type TempDir } from '../fixtures/metrics-files.js'
import { waitFor } from '../fixtures/wait.js'
import { launchBrowser, openPage, screenshot, STATIC_DIR, waitForPanel } from './helpers.js'

const TOKEN = 'e2e-token-0123456789abcdef'
const APP = join(import.meta.dirname, '..', 'fixtures', 'remote-app.ts')

interface RemoteApp {
  url: string
  database: string
  child: ChildProcess
}

async function startRemoteApp(dir: string, framework: 'koa' | 'express', node: string) {
  const database = join(dir, `${node}.db`)
  const child = fork(APP, [database, framework, node, TOKEN], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the ${framework} app exited with ${code}`)))
    child.on('message', (message: { type: string; port: number }) => {
      if (message.type === 'listening') resolve(message.port)
    })
  })
  return { url: `http://127.0.0.1:${port}`, database, child } satisfies RemoteApp
}

async function traffic(app: RemoteApp, paths: string[]): Promise<void> {
  for (const path of paths) await (await fetch(app.url + path)).arrayBuffer()
  const client = new RemoteClient(app.url, TOKEN)
  await waitFor(`${app.url} to write its requests`, async () => {
    const db = new Database(app.database, { readonly: true })
    const n = db.prepare('SELECT count(*) FROM request').pluck().get() as number
    db.close()
    return n >= paths.length && (await client.info()).requests >= paths.length
  })
}

/**
 * A slow link in front of a server: answers pass through, but a snapshot's
 * body arrives in 30 slices over about 3 s, as over a slow connection.
 */
async function slowLink(target: string): Promise<Server> {
  const proxy = createServer((req, res) => {
    const upstream = request(
      new URL(req.url ?? '/', target),
      { method: req.method, headers: req.headers },
      (answer) => {
        const chunks: Buffer[] = []
        answer.on('data', (chunk: Buffer) => chunks.push(chunk))
        answer.on('end', () => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          const body = Buffer.concat(chunks)
          if (!req.url?.includes('/snapshot')) {
            res.end(body)
            return
          }
          const slice = Math.ceil(body.length / 30)
          let at = 0
          const timer = setInterval(() => {
            if (res.destroyed) return clearInterval(timer)
            res.write(body.subarray(at, at + slice))
            at += slice
            if (at >= body.length) {
              clearInterval(timer)
              res.end()
            }
          }, 100)
        })
      },
    )
    req.pipe(upstream)
  })
  proxy.listen(0, '127.0.0.1')
  await new Promise((resolve) => proxy.once('listening', resolve))
  return proxy
}

let temp: TempDir
let koa: RemoteApp
let express: RemoteApp
let link: Server
let linkUrl: string
let files: DashboardService
let sources: SourcesService
let web: WebServer
let browser: Browser
let page: Page
let dataDir: string

beforeAll(async () => {
  temp = tempDir('routemeter-e2e-remote-')
  ;[koa, express] = await Promise.all([
    startRemoteApp(temp.dir, 'koa', 'node-koa'),
    startRemoteApp(temp.dir, 'express', 'node-express'),
  ])
  await traffic(koa, [
    ...Array.from({ length: 30 }, (_v, i) => `/api/items/${i % 5}`),
    ...Array.from({ length: 12 }, () => '/api/items'),
  ])
  await traffic(
    express,
    Array.from({ length: 18 }, () => '/api/items'),
  )
  link = await slowLink(koa.url)
  linkUrl = `http://127.0.0.1:${(link.address() as AddressInfo).port}`
  dataDir = join(temp.dir, 'data')
  files = new DashboardService({ watch: { debounceMs: 50, pollIntervalMs: 250 } })
  sources = new SourcesService({ files, dataDir, remoteAllowed: true, openAllowed: false })
  web = await startWebServer({ service: files, sources, staticDir: STATIC_DIR })
  browser = await launchBrowser()
  ;({ page } = await openPage(browser, web.url))
})

afterAll(async () => {
  await browser?.close()
  await web?.close()
  await sources?.close()
  await files?.close()
  link?.closeAllConnections()
  link?.close()
  for (const app of [koa, express]) app?.child.kill()
  temp?.cleanup()
})

test('a wrong token is refused with a clear message, and nothing is written', async () => {
  await page.click('[data-action="servers"]')
  await page.fill('[data-input="server-url"]', koa.url)
  await page.fill('[data-input="server-token"]', 'not-the-token-000000')
  await page.click('[data-action="add-server"]')
  const error = page.locator('[data-sources-dialog] [data-sources-error]')
  await error.waitFor()
  expect(await error.textContent()).toMatch(/The server refused the token.*wrong token/s)
  expect(await page.locator('[data-server-list]').count()).toBe(0)
  expect(readdirSync(dataDir)).toEqual([])
  await screenshot(page, 'remote-wrong-token')
})

test('add a server, see the progress bar, explore the copy', async () => {
  await page.fill('[data-input="server-url"]', linkUrl)
  await page.fill('[data-input="server-token"]', TOKEN)
  await page.click('[data-action="add-server"]')
  const row = page.locator(`[data-server="${linkUrl}"]`)
  await row.waitFor()
  expect(await row.textContent()).toContain('node node-koa')
  await row.locator('[data-action="pull"]').click()

  const bar = page.locator('[data-pull-progress][data-phase="downloading"]')
  await bar.waitFor()
  await page.waitForFunction(() => {
    const value = document.querySelector('[data-pull-progress] [role="progressbar"]')
    return Number(value?.getAttribute('aria-valuenow') ?? 0) > 10
  })
  expect(await bar.locator('[data-pull-bytes]').textContent()).toMatch(/of .*%/)
  await screenshot(page, 'remote-progress')

  await waitForPanel(page, 'overview')
  expect(await page.locator('[data-sources-dialog]').count()).toBe(0)
  expect(await page.locator('[data-dataset] .badge.server').textContent()).toContain(linkUrl)
  const hits = await page
    .locator('tr[data-endpoint="GET /api/items/:id"] [data-cell="range-hits"] .main-value')
    .textContent()
  expect(hits?.trim()).toBe('30')
  await screenshot(page, 'remote-pulled')
})

test('Refresh from server brings what is new', async () => {
  await traffic(koa, ['/api/items/1', '/api/items/2', '/api/items/3'])
  await page.click('[data-action="refresh"]')
  await page.waitForFunction(
    () =>
      document
        .querySelector(
          'tr[data-endpoint="GET /api/items/:id"] [data-cell="range-hits"] .main-value',
        )
        ?.textContent?.trim() === '33',
  )
  expect((await sources.state({})).lastPull?.incremental).toBe(true)
})

test("toggle an endpoint's level on the server, and see that it accepted", async () => {
  await page.click('tr[data-endpoint="GET /api/items"] a[href^="#/endpoint/"]')
  await page.waitForSelector('[data-endpoint-page]')
  await page.click('.endpoint-head .level-control button:text-is("0")')
  const outcome = page.locator('.endpoint-head [data-level-sources] [data-accepted="true"]')
  await outcome.waitFor()
  expect(await outcome.textContent()).toContain(`server ${linkUrl.replace('http://', '')} accepted`)
  const db = new Database(koa.database, { readonly: true })
  const level = db
    .prepare("SELECT monitor_level FROM endpoint WHERE method = 'GET' AND route = '/api/items'")
    .pluck()
    .get()
  db.close()
  expect(level).toBe(0)
  await screenshot(page, 'remote-level')
})

test('a download cancelled from the progress bar leaves the copy as it was', async () => {
  const before = readdirSync(dataDir).sort()
  await page.click('[data-action="servers"]')
  await page.locator(`[data-server="${linkUrl}"] [data-action="pull"]`).click()
  await page.locator('[data-pull-progress][data-phase="downloading"]').waitFor()
  await page.click('[data-action="cancel-pull"]')
  const error = page.locator('[data-sources-dialog] [data-sources-error]')
  await error.waitFor()
  expect(await error.textContent()).toMatch(/cancelled.*nothing was saved/)
  expect(readdirSync(dataDir).sort()).toEqual(before)
  await screenshot(page, 'remote-cancelled')
  await page.click('[data-action="close-sources"]')
})

test('two nodes as one service, with a per-node split and a node filter', async () => {
  await page.click('[data-action="servers"]')
  await page.fill('[data-input="server-url"]', express.url)
  await page.fill('[data-input="server-token"]', TOKEN)
  await page.click('[data-action="add-server"]')
  await page.locator(`[data-server="${express.url}"]`).waitFor()
  // A server just added is ticked; the one pulled before is ticked by hand.
  const other = page.locator(`[data-server="${linkUrl}"] [data-input="pick-server"]`)
  if (!(await other.isChecked())) await other.check()
  expect(await page.locator('[data-input="pick-server"]:checked').count()).toBe(2)
  await screenshot(page, 'remote-dialog')
  await page.click('[data-action="open-several"]')
  await page.waitForSelector('[data-node-filter]')
  await page.evaluate(() => (window.location.hash = '#/overview'))
  await waitForPanel(page, 'nodes')
  await waitForPanel(page, 'overview')

  const hits = async (node: string) =>
    Number(
      (
        await page.locator(`[data-nodes-table] tr[data-node="${node}"] [data-hits]`).textContent()
      )?.replace(/\D/g, ''),
    )
  expect(await hits('node-koa')).toBe(45)
  expect(await hits('node-express')).toBe(18)
  const total = page.locator(
    'tr[data-endpoint="GET /api/items"] [data-cell="range-hits"] .main-value',
  )
  expect((await total.textContent())?.trim()).toBe(String(12 + 18))
  expect(await page.locator('[data-dataset] .badge.merged').textContent()).toContain('2 sources')
  await screenshot(page, 'remote-merged')

  await page.click('[data-node-filter] [data-node="node-express"]')
  await page.waitForFunction(
    () =>
      document
        .querySelector('tr[data-endpoint="GET /api/items"] [data-cell="range-hits"] .main-value')
        ?.textContent?.trim() === '18',
  )
  await screenshot(page, 'remote-node-filter')

  // The endpoint page splits that endpoint's requests per node.
  await page.click('[data-node-filter] [data-node="all"]')
  await page.click('tr[data-endpoint="GET /api/items"] a[href^="#/endpoint/"]')
  await page.waitForSelector('[data-endpoint-page]')
  await waitForPanel(page, 'nodes')
  expect(await hits('node-koa')).toBe(12)
  expect(await hits('node-express')).toBe(18)
  await screenshot(page, 'remote-endpoint-nodes')
})
