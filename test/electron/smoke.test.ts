/**
 * The desktop app itself, through Playwright's Electron driver: it opens a
 * fixture and shows its endpoints. Where Electron cannot start (no binary, no
 * display, no better-sqlite3 built for Electron), it is skipped and says why.
 */
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { _electron as electron } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import {
  displayProblem,
  findElectronBinary,
  nativeBindingPath,
  ROOT,
} from '../../scripts/electron-env.mjs'
import { buildMetricsFile, tempDir, type TempDir } from '../fixtures/metrics-files.js'

function whyNot(): { reason: string } | { path: string } {
  const binary = findElectronBinary({ downloadTimeoutMs: 30_000 })
  if (binary.reason !== undefined) return { reason: binary.reason }
  const display = displayProblem()
  if (display !== undefined) return { reason: display }
  if (!existsSync(nativeBindingPath())) {
    return { reason: `${nativeBindingPath()} is missing (run npm run build:native)` }
  }
  return { path: binary.path }
}

const target = whyNot()
if ('reason' in target) console.log(`Electron smoke test skipped: ${target.reason}`)

let temp: TempDir
beforeAll(() => {
  temp = tempDir('routemeter-electron-')
})
afterAll(() => temp?.cleanup())

test.skipIf('reason' in target)(
  'the desktop app opens a metrics file and shows its endpoints',
  async () => {
    const file = buildMetricsFile(temp.dir, { requests: 2000 })
    const app = await electron.launch({
      executablePath: (target as { path: string }).path,
      // A throwaway profile: recent files and the demo stay out of the user's.
      args: [ROOT, `--user-data-dir=${mkdtempSync(join(tmpdir(), 'routemeter-profile-'))}`, file],
      cwd: ROOT,
    })
    try {
      const window = await app.firstWindow()
      await window.waitForSelector('[data-panel="overview"][data-state="ready"]', {
        timeout: 30_000,
      })
      expect(await window.locator('tr[data-endpoint-id]').count()).toBeGreaterThan(10)
      expect(await window.title()).toContain('metrics.db')
      // The page gets the narrow bridge, and no Node.
      const exposed = await window.evaluate(() => {
        const page = globalThis as unknown as {
          routemeter?: { transport: string }
          require?: unknown
          process?: unknown
        }
        return {
          transport: page.routemeter?.transport,
          bridge: Object.keys(page.routemeter ?? {}).sort(),
          require: typeof page.require,
          process: typeof page.process,
        }
      })
      expect(exposed.transport).toBe('desktop')
      expect(exposed.bridge).toContain('setLevel')
      expect(exposed.bridge).not.toContain('invoke')
      expect(exposed.require).toBe('undefined')
      expect(exposed.process).toBe('undefined')
    } finally {
      await app.close()
    }
  },
  120_000,
)
