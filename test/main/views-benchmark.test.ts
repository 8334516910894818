/**
 * Times every view on a generated file of 1 million requests. Skipped unless
 * ROUTEMETER_BENCH is set (speed is measured, never asserted):
 *   ROUTEMETER_BENCH=1 npx vitest run test/main/views-benchmark.test.ts
 * ROUTEMETER_BENCH_FILE reuses a file instead of generating one.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import type { RangeArgs } from '../../src-main/api/contract.js'
import { DashboardService } from '../../src-main/services/dashboard.js'
import { createDemoDatabase } from '../../src-main/services/demo.js'

const enabled = process.env.ROUTEMETER_BENCH !== undefined
if (!enabled) {
  console.log('views-benchmark skipped: set ROUTEMETER_BENCH=1 to time the views on 1M requests')
}

describe.skipIf(!enabled)('views on 1M requests', () => {
  const dir = mkdtempSync(join(tmpdir(), 'routemeter-bench-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  test('every view', { timeout: 600_000 }, async () => {
    const now = Date.UTC(2026, 10, 20, 12)
    let path = process.env.ROUTEMETER_BENCH_FILE
    if (path === undefined) {
      path = join(dir, 'metrics-1m.db')
      const started = performance.now()
      createDemoDatabase(path, { requests: 1_000_000, now })
      console.log(`generate: ${Math.round(performance.now() - started)} ms`)
    }
    const service = new DashboardService({ watch: false, now: () => now })
    const timings: string[] = []
    const time = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
      let best = Infinity
      let result: T | undefined
      for (let i = 0; i < 3; i++) {
        const started = performance.now()
        result = await run()
        best = Math.min(best, performance.now() - started)
      }
      timings.push(`${name.padEnd(22)} ${Math.round(best).toString().padStart(5)} ms`)
      return result as T
    }
    const info = await time('openFile', () => service.openFile({ path: path! }))
    expect(info.requestCount).toBeGreaterThan(900_000)
    const month: RangeArgs = {
      from: info.firstRequest!,
      to: info.lastRequest! + 1,
      utcOffsetMinutes: 60,
    }
    const busiest = (await service.performance(month)).sort(
      (a, b) => b.stats.count - a.stats.count,
    )[0]!
    const endpointId = busiest.endpointId
    await time('info', () => service.info({}))
    await time('endpoints', () => service.endpoints(month))
    await time('utilization', () => service.utilization(month))
    await time('hourHeatmap', () => service.hourHeatmap(month))
    await time('performance', () => service.performance(month))
    await time('versionEvolution', () => service.versionEvolution({ ...month, endpointId }))
    await time('versionUtilization', () => service.versionUtilization(month))
    await time('clients (user)', () => service.clients({ ...month, endpointId, kind: 'user' }))
    await time('clients (ip)', () => service.clients({ ...month, endpointId, kind: 'ip' }))
    await time('statusCodes', () => service.statusCodes(month))
    await time('latestErrors', () => service.latestErrors(month))
    await time('nodeBreakdown', () => service.nodeBreakdown(month))
    console.log(
      `${info.requestCount} requests, busiest endpoint ${endpointId} (${busiest.stats.count})\n${timings.join('\n')}`,
    )
    await service.close()
  })
})
