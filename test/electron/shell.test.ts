/**
 * The desktop shell's electron-free parts under Node: the IPC handler map
 * against a real service and file, startup choices, recent files, and what
 * the app protocol may serve.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { ApiError, FileInfo } from '../../src-main/api/contract.js'
import { API_METHODS } from '../../src-main/api/validate.js'
import { DashboardService } from '../../src-main/services/dashboard.js'
import type { DashboardApi } from '../../src-main/api/contract.js'
import { callApi } from '../../src-main/api/dispatch.js'
import { desktopApi } from '../../src-main/shell/handlers.js'
import { RecentFiles } from '../../src-main/shell/recent.js'
import { isAppUrl, staticFile } from '../../src-main/shell/security.js'
import { electronNativeBinding, fileArgument, startupFile } from '../../src-main/shell/startup.js'
import { Expected } from '../e2e/expected.js'
import {
  buildMetricsFile,
  FIXTURE_NOW,
  makeBadFile,
  tempDir,
  type TempDir,
} from '../fixtures/metrics-files.js'

let temp: TempDir
let file: string
let service: DashboardService
let startupError: ApiError | null
const opened: string[] = []
let handlers: DashboardApi

const RANGE = { from: FIXTURE_NOW - 7 * 86_400_000, to: FIXTURE_NOW, utcOffsetMinutes: 0 }

beforeAll(() => {
  temp = tempDir('routemeter-shell-')
  file = buildMetricsFile(temp.dir, { requests: 3000 })
  service = new DashboardService({ watch: false, now: () => FIXTURE_NOW })
  startupError = null
  handlers = desktopApi(service, {
    openFile: async (path: string): Promise<FileInfo> => {
      const info = await service.openFile({ path })
      opened.push(info.path)
      startupError = null
      return info
    },
    startupError: () => startupError,
  })
})

afterAll(async () => {
  await service.close()
  temp.cleanup()
})

describe('the desktop API behind IPC', () => {
  test('one function per API method', () => {
    expect(Object.keys(handlers).sort()).toEqual([...API_METHODS].sort())
  })

  test('before any file: the reason the startup file was refused, not just "no file"', async () => {
    const bad = makeBadFile(temp.dir, 'too-new', file)
    startupError = await service.openFile({ path: bad }).then(
      () => null,
      (error: ApiError) => ({ code: error.code, message: error.message }),
    )
    expect(startupError?.code).toBe('TOO_NEW')
    const answer = await callApi(handlers, 'info', {})
    expect(answer).toEqual({ ok: false, error: startupError })
  })

  test('openFile goes through the shell (recent files), then the API answers', async () => {
    const answer = await callApi(handlers, 'openFile', { path: file })
    expect(answer.ok).toBe(true)
    expect(opened).toEqual([file])
    const info = await handlers.info({})
    expect(info.path).toBe(file)
    const expected = new Expected(file)
    try {
      expect(info.requestCount).toBe(expected.count(0, Number.MAX_SAFE_INTEGER))
    } finally {
      expected.close()
    }
    const rows = await handlers.endpoints(RANGE)
    expect(rows.length).toBe(info.endpointCount)
  })

  test('every argument is validated where IPC enters (callApi); errors travel as data', async () => {
    const bad: Record<string, unknown> = {
      endpoints: { from: 'yesterday', to: 1, utcOffsetMinutes: 0 },
      utilization: null,
      hourHeatmap: { ...RANGE, endpointId: -1 },
      performance: { ...RANGE, endpointIds: ['1'] },
      versionEvolution: RANGE,
      versionUtilization: { ...RANGE, to: RANGE.from },
      clients: { ...RANGE, endpointId: 1, kind: 'robot' },
      statusCodes: { ...RANGE, utcOffsetMinutes: 5000 },
      latestErrors: { ...RANGE, limit: 0 },
      setLevel: { endpointId: 1, level: 7 },
      openFile: { path: '' },
    }
    for (const [method, args] of Object.entries(bad)) {
      const answer = await callApi(handlers, method, args)
      expect(answer, method).toMatchObject({ ok: false, error: { code: 'BAD_ARGUMENT' } })
    }
    expect(opened).toEqual([file])
  })

  test('setLevel writes the level and answers the endpoint', async () => {
    const [row] = await handlers.endpoints(RANGE)
    const answer = await callApi(handlers, 'setLevel', { endpointId: row!.id, level: 2 })
    expect(answer).toMatchObject({ ok: true, value: { id: row!.id, level: 2 } })
  })
})

describe('startup', () => {
  test('the file argument, in development and packaged', () => {
    expect(fileArgument(['electron', '.', 'm.db'], false, '/home/me')).toBe('/home/me/m.db')
    expect(fileArgument(['electron', '.', '--inspect', '/a/m.db'], false, '/x')).toBe('/a/m.db')
    expect(fileArgument(['Routemeter', 'm.db'], true, '/w')).toBe('/w/m.db')
    expect(fileArgument(['electron', '.'], false, '/w')).toBeNull()
  })

  test('the argument, else the last file if it still exists, else the demo', () => {
    const userData = join(temp.dir, 'user-data')
    expect(startupFile('/x/a.db', file, userData)).toEqual({ kind: 'argument', path: '/x/a.db' })
    expect(startupFile(null, file, userData)).toEqual({ kind: 'last', path: file })
    expect(startupFile(null, join(temp.dir, 'gone.db'), userData)).toEqual({
      kind: 'demo',
      path: join(userData, 'demo.db'),
    })
  })

  test("Electron's better-sqlite3 lives apart from node_modules", () => {
    expect(electronNativeBinding('/app', '45.5.0')).toBe(
      '/app/build/native/electron-45.5.0/better_sqlite3.node',
    )
  })

  test('recent files: newest first, no duplicates, kept across restarts, bad JSON ignored', () => {
    const store = join(temp.dir, 'profile', 'recent.json')
    const recent = new RecentFiles(store)
    recent.add('/a.db')
    recent.add('/b.db')
    recent.add('/a.db')
    expect(recent.list()).toEqual(['/a.db', '/b.db'])
    expect(new RecentFiles(store).last()).toBe('/a.db')
    writeFileSync(store, '{ not json')
    expect(new RecentFiles(store).list()).toEqual([])
  })
})

describe('app protocol', () => {
  test('serves files of the renderer build only', () => {
    const root = join(temp.dir, 'renderer')
    mkdirSync(root, { recursive: true })
    expect(staticFile(root, '/')).toBe(join(root, 'index.html'))
    expect(staticFile(root, '/assets/index.js')).toBe(join(root, 'assets/index.js'))
    // ".." cannot climb above the build: the path is resolved as if the build were "/".
    expect(staticFile(root, '/../secret')).toBe(join(root, 'secret'))
    expect(staticFile(root, '/%2e%2e/%2e%2e/etc/passwd')).toBe(join(root, 'etc/passwd'))
    expect(staticFile(root, '/%E0%A4%A')).toBeNull()
    expect(staticFile(root, '/index.html%00.png')).toBeNull()
  })

  test('the window may show the app and nothing else', () => {
    expect(isAppUrl('routemeter://app/index.html#/status', undefined)).toBe(true)
    expect(isAppUrl('https://example.com/', undefined)).toBe(false)
    expect(isAppUrl('file:///etc/passwd', undefined)).toBe(false)
    expect(isAppUrl('http://localhost:5173/', 'http://localhost:5173/')).toBe(true)
  })
})
