/**
 * Times the dashboard's queries in a fresh process, as the desktop app's main
 * process (or web mode) runs them: opening the file, then every view's data,
 * the first call and warm calls, for the UI's default range (30 days) and for
 * the whole file. Prints one JSON line.
 *
 *   node --import tsx bench/viewer-child.ts <file> <now ms> <warm runs>
 */
import type { RangeArgs } from '../src-main/api/contract.js'
import { DashboardService } from '../src-main/services/dashboard.js'

const MS_PER_DAY = 86_400_000

export interface ViewTiming {
  firstMs: number
  warmMs: number
}

export interface ViewerChildResult {
  openMs: number
  requestCount: number
  sizeBytes: number
  /** range name -> view -> timing */
  ranges: Record<string, Record<string, ViewTiming>>
  rssBytes: number
  heapUsedBytes: number
}

async function main(): Promise<void> {
  const [path, nowArg, warmArg] = process.argv.slice(2)
  if (path === undefined) throw new Error('usage: viewer-child.ts <file> <now> <warm runs>')
  const now = Number(nowArg)
  const warmRuns = Number(warmArg ?? 5)
  const service = new DashboardService({ watch: false, now: () => now })
  const started = performance.now()
  const info = await service.openFile({ path })
  const openMs = performance.now() - started

  const ranges: Record<string, RangeArgs> = {
    '30 days': { from: now - 30 * MS_PER_DAY, to: now, utcOffsetMinutes: 60 },
    all: { from: info.firstRequest ?? 0, to: (info.lastRequest ?? 0) + 1, utcOffsetMinutes: 60 },
  }
  const results: ViewerChildResult['ranges'] = {}
  for (const [name, range] of Object.entries(ranges)) {
    const busiest = (await service.performance(range)).sort(
      (a, b) => b.stats.count - a.stats.count,
    )[0]
    const endpointId = busiest?.endpointId ?? 1
    const views: Record<string, () => Promise<unknown>> = {
      info: () => service.info({}),
      endpoints: () => service.endpoints(range),
      utilization: () => service.utilization(range),
      hourHeatmap: () => service.hourHeatmap(range),
      performance: () => service.performance(range),
      versionEvolution: () => service.versionEvolution({ ...range, endpointId }),
      versionUtilization: () => service.versionUtilization(range),
      'clients (user)': () => service.clients({ ...range, endpointId, kind: 'user' }),
      'clients (ip)': () => service.clients({ ...range, endpointId, kind: 'ip' }),
      statusCodes: () => service.statusCodes(range),
      latestErrors: () => service.latestErrors(range),
      nodeBreakdown: () => service.nodeBreakdown(range),
      // The latest release against the one before, and the range's two halves.
      'compare (releases)': () => service.compare({ baseline: [], candidate: [] }),
      'compare (periods)': () => {
        const middle = Math.floor((range.from + range.to) / 2 / 3_600_000) * 3_600_000
        return service.compare({
          baseline: [],
          candidate: [],
          baselineRange: [range.from, middle],
          candidateRange: [middle, range.to],
        })
      },
      'versionEvolution (releases)': () =>
        service.versionEvolution({ ...range, endpointId, timeline: 'releases' }),
    }
    const timings: Record<string, ViewTiming> = {}
    for (const [view, run] of Object.entries(views)) {
      const t0 = performance.now()
      await run()
      const firstMs = performance.now() - t0
      const warm: number[] = []
      for (let i = 0; i < warmRuns; i++) {
        const t = performance.now()
        await run()
        warm.push(performance.now() - t)
      }
      warm.sort((a, b) => a - b)
      timings[view] = { firstMs, warmMs: warm[Math.floor(warm.length / 2)] ?? firstMs }
    }
    results[name] = timings
  }
  const memory = process.memoryUsage()
  await service.close()
  const result: ViewerChildResult = {
    openMs,
    requestCount: info.requestCount,
    sizeBytes: info.sizeBytes,
    ranges: results,
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
  }
  console.log(JSON.stringify(result))
}

main().catch((error: unknown) => {
  console.error((error as Error).stack ?? String(error))
  process.exitCode = 1
})
