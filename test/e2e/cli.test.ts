/**
 * The built web-mode entry (out/main/serve.js, plain Node) and `npm start`
 * on a machine where Electron cannot start: one line saying why, then web mode.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { displayProblem, findElectronBinary, ROOT } from '../../scripts/electron-env.mjs'
import { buildMetricsFile, tempDir, type TempDir } from '../fixtures/metrics-files.js'
import { launchBrowser, openPage, waitForPanel } from './helpers.js'

let temp: TempDir
let file: string
const children: ChildProcess[] = []

beforeAll(() => {
  temp = tempDir('routemeter-e2e-cli-')
  file = buildMetricsFile(temp.dir, { requests: 1000 })
})

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.pid !== undefined) {
      // The child and what it spawned (start.mjs runs serve.js): their own process group.
      try {
        process.kill(-child.pid, 'SIGTERM')
      } catch {
        child.kill('SIGTERM')
      }
    }
  }
  temp?.cleanup()
})

/** Starts a Node script; resolves with its output lines up to the one `until` accepts. */
function run(
  args: string[],
  until: (line: string) => boolean,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string[]> {
  const child = spawn(process.execPath, args, { cwd: ROOT, detached: true, stdio: 'pipe', env })
  children.push(child)
  const lines: string[] = []
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no end line; got:\n${lines.join('\n')}`)),
      60_000,
    )
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`exited with ${code}:\n${lines.join('\n')}`))
    })
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        lines.push(line)
        if (until(line)) {
          clearTimeout(timer)
          child.removeAllListeners('exit')
          resolve(lines)
        }
      })
    }
  })
}

const URL_LINE = /^Routemeter is showing (.+) at (http:\/\/\S+)$/

test('node out/main/serve.js shows a file and prints its URL', async () => {
  const lines = await run([join(ROOT, 'out/main/serve.js'), file, '--port', '0'], (l) =>
    URL_LINE.test(l),
  )
  const [, shown, url] = URL_LINE.exec(lines.at(-1)!)!
  expect(shown).toBe(file)
  const html = await (await fetch(url!)).text()
  const script = /<script type="module" crossorigin src="(\.\/assets\/[^"]+\.js)"/.exec(html)?.[1]
  expect(script, 'a relative module script').toBeDefined()
  const asset = await fetch(new URL(script!, url))
  expect(asset.status).toBe(200)
  expect(asset.headers.get('content-type')).toContain('text/javascript')

  const browser = await launchBrowser()
  try {
    const { page, problems } = await openPage(browser, url!)
    await waitForPanel(page, 'overview')
    expect(await page.locator('tr[data-endpoint-id]').count()).toBeGreaterThan(10)
    expect(problems.errors).toEqual([])
  } finally {
    await browser.close()
  }
})

test('npm run serve keeps pulled copies in a private folder of its own and removes it on Ctrl-C', async () => {
  // A TMPDIR of the test's own, so that the folder web mode makes there can be found.
  const tmp = join(temp.dir, 'tmp')
  mkdirSync(tmp)
  const lines = await run(
    [join(ROOT, 'scripts/serve.mjs'), file, '--port', '0'],
    (l) => URL_LINE.test(l),
    { ...process.env, TMPDIR: tmp },
  )
  expect(lines.at(-1)).toMatch(URL_LINE)
  const folders = readdirSync(tmp).filter((name) => name.startsWith('routemeter-web-'))
  expect(folders).toHaveLength(1)
  const folder = join(tmp, folders[0]!)
  expect(statSync(folder).mode & 0o777).toBe(0o700)
  expect(statSync(folder).uid).toBe(process.getuid!())

  // Ctrl-C in a terminal: SIGINT to the whole process group (serve.mjs forwards it too).
  const child = children.at(-1)!
  const exited = new Promise((resolveExit) => child.once('exit', resolveExit))
  process.kill(-child.pid!, 'SIGINT')
  expect(await exited).toBe(0)
  expect(existsSync(folder)).toBe(false)
})

const electron = findElectronBinary({ downloadTimeoutMs: 30_000 })
const electronBlocked = electron.reason ?? displayProblem()

test.runIf(electronBlocked !== undefined)(
  'npm start says in one line why Electron cannot start here, then serves web mode',
  async () => {
    const lines = await run([join(ROOT, 'scripts/start.mjs'), file, '--port', '0'], (l) =>
      URL_LINE.test(l),
    )
    const why = lines.filter((l) => l.startsWith('Electron cannot start here: '))
    expect(why).toHaveLength(1)
    expect(why[0]).toContain(electron.reason ?? displayProblem()!)
    expect(why[0]).toMatch(/; starting web mode instead\.$/)
    const url = URL_LINE.exec(lines.at(-1)!)![2]!
    const info = (await (await fetch(new URL('api/info', url))).json()) as { path: string }
    expect(info.path).toBe(file)
  },
  120_000,
)
