import { join } from 'node:path'
import { afterAll, expect, test } from 'vitest'
import { watchMetricsFile } from '../../src-main/services/watcher.js'
import { startCollectedApp, waitFor } from '../fixtures/collected-app.js'
import { tempDir } from '../fixtures/metrics-files.js'

const temp = tempDir()
afterAll(() => temp.cleanup())

test('file events alone (no poll) notice a collector commit to the -wal', async () => {
  const path = join(temp.dir, 'watched.db')
  const app = await startCollectedApp(path)
  let calls = 0
  // A poll interval longer than the test: only chokidar can call back.
  const watcher = watchMetricsFile(path, () => calls++, {
    debounceMs: 100,
    pollIntervalMs: 600_000,
  })
  try {
    // chokidar needs a moment to set up its watches; keep committing until it reports.
    await waitFor(
      'a file event',
      async () => {
        await app.get('/api/items')
        app.collector.flush()
        return calls > 0
      },
      5000,
    )
    const seen = calls
    // Coalesced: a burst of commits gives few callbacks, not one each.
    for (let i = 0; i < 10; i++) {
      await app.get('/api/items/1')
      app.collector.flush()
    }
    await waitFor('the burst to be reported', () => calls > seen, 2000)
    expect(calls - seen).toBeLessThan(10)
  } finally {
    await watcher.close()
    await app.close()
  }
})

test('the poll calls back without any file event, and stops when closed', async () => {
  let calls = 0
  const watcher = watchMetricsFile(join(temp.dir, 'absent.db'), () => calls++, {
    pollIntervalMs: 50,
  })
  await waitFor('two polls', () => calls >= 2, 2000)
  await watcher.close()
  const after = calls
  await new Promise((resolve) => setTimeout(resolve, 150))
  expect(calls).toBe(after)
})
