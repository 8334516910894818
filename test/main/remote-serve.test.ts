/**
 * Web mode's command line for servers: --allow-remote lets the page add
 * servers (outgoing requests), --data-dir says where copies go; without the
 * flag the sources API refuses to contact anything.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SourcesState } from '../../src-main/api/contract.js'
import { parseServeArgs, runServe, type RunningServe } from '../../src-main/web/cli.js'
import { buildMetricsFile, tempDir, type TempDir } from '../fixtures/metrics-files.js'

let temp: TempDir
let file: string
const running: RunningServe[] = []

beforeAll(() => {
  temp = tempDir()
  file = buildMetricsFile(temp.dir, { requests: 500 })
})

afterAll(async () => {
  for (const serve of running) await serve.stop()
  temp?.cleanup()
})

async function post(url: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: response.status, body: await response.json() }
}

describe('serve with servers', () => {
  it('parses --allow-remote and --data-dir', () => {
    expect(parseServeArgs(['m.db', '--allow-remote', '--data-dir', '/d/x'], '/r')).toMatchObject({
      allowRemote: true,
      dataDir: '/d/x',
    })
    expect(parseServeArgs(['m.db'], '/r')).not.toHaveProperty('allowRemote')
  })

  it('contacts servers only with --allow-remote, and keeps copies in --data-dir', async () => {
    const closed = await runServe(
      { file, host: '127.0.0.1', port: 0, staticDir: temp.dir, allowOpen: false },
      () => undefined,
    )
    running.push(closed)
    const state = (await (await fetch(`${closed.url}api/sources/state`)).json()) as SourcesState
    expect(state.remoteAllowed).toBe(false)
    const refused = await post(`${closed.url}api/sources/addServer`, {
      url: 'http://127.0.0.1:9',
      token: 'x'.repeat(20),
    })
    expect(refused.status).toBe(403)
    expect(JSON.stringify(refused.body)).toContain('--allow-remote')

    const dataDir = join(temp.dir, 'copies')
    const open = await runServe(
      {
        file,
        host: '127.0.0.1',
        port: 0,
        staticDir: temp.dir,
        allowOpen: false,
        allowRemote: true,
        dataDir,
      },
      () => undefined,
    )
    running.push(open)
    expect(existsSync(dataDir)).toBe(true)
    // Now it does try: port 9 (discard) has no server, and the answer says so.
    const unreachable = await post(`${open.url}api/sources/addServer`, {
      url: 'http://127.0.0.1:9',
      token: 'x'.repeat(20),
    })
    expect(unreachable.status).toBe(502)
    expect(unreachable.body).toMatchObject({ error: { code: 'UNREACHABLE' } })
  })
})
