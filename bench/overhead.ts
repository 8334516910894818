/**
 * Overhead on the request path: hello-world Express and Koa apps, bare and
 * with each way of recording requests, each in its own pinned process under
 * autocannon. Configurations alternate within rounds (in a rotated order),
 * so that a noisy moment of the machine hits them all alike.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CONFIGS } from './configs.mjs'
import { load, spread, startServer, threadCpu, type Spread } from './lib.js'

export const LABELS: Record<string, string> = {
  bare: 'bare',
  'routemeter-0': 'Routemeter level 0',
  'routemeter-1': 'Routemeter level 1',
  'prom-bundle': 'express-prom-bundle',
  'swagger-stats': 'swagger-stats',
  'status-monitor': 'express-status-monitor',
  otel: 'OpenTelemetry metrics',
  'sqlite-batch': 'SQLite batch middleware',
  'routemeter-2': 'Routemeter level 2 (no outlier)',
  'routemeter-1-beside-2': 'Routemeter level 1, another endpoint at 2',
  'routemeter-2-no-ops': 'Routemeter level 2, operations off',
  'routemeter-1-beside-2-no-ops': 'Routemeter level 1, another at 2, operations off',
  'routemeter-2-outliers': 'Routemeter level 2, half outliers',
  'routemeter-1-awaits': 'Routemeter level 1, 100 awaits',
  'routemeter-2-awaits': 'Routemeter level 2, 100 awaits',
}

export interface OverheadOptions {
  rounds: number
  warmupSeconds: number
  seconds: number
  connections: number
  /** only these configurations (bare is always run: the others are measured against it) */
  only?: string[]
  log: (line: string) => void
}

export interface Run {
  round: number
  rps: number
  p50: number
  p99: number
  /** CPU µs per response: the main thread, and all threads of the server */
  cpuMainUs: number
  cpuAllUs: number
  clientCpu: number
  errors: number
  non2xx: number
  stats: Record<string, unknown>
}

export interface ConfigSummary {
  framework: string
  config: string
  label: string
  runs: Run[]
  rps: Spread
  p50: Spread
  p99: Spread
  /** throughput over the bare app's in the same round: the median of the rounds */
  ratio: number
  p50Ratio: number
  p99Ratio: number
  /** 1/throughput - 1/bare throughput in µs, per round (paired with that round's bare run) */
  addedUs: Spread
  cpuMainUs: Spread
  cpuAllUs: Spread
  /** median CPU µs per request above bare's: on the main thread, on all threads */
  addedMainUs: number
  addedAllUs: number
}

async function measure(
  framework: string,
  config: string,
  round: number,
  options: OverheadOptions,
  dir: string,
): Promise<Run> {
  const db = join(dir, `${framework}-${config}-${round}.db`)
  const server = await startServer(framework, config, ['--db', db])
  try {
    await load(server.url, { seconds: options.warmupSeconds, connections: options.connections })
    const before = threadCpu(server.pid)
    const result = await load(server.url, {
      seconds: options.seconds,
      connections: options.connections,
    })
    const after = threadCpu(server.pid)
    const stats = await server.stop()
    const perRequest = (seconds: number): number => (seconds * 1e6) / result.responses
    return {
      round,
      rps: result.rps,
      p50: result.p50,
      p99: result.p99,
      cpuMainUs: perRequest(after.main - before.main),
      cpuAllUs: perRequest(after.all - before.all),
      clientCpu: result.clientCpu,
      errors: result.errors,
      non2xx: result.non2xx,
      stats,
    }
  } finally {
    await server.stop()
    for (const suffix of ['', '-wal', '-shm']) rmSync(db + suffix, { force: true })
  }
}

export async function runOverhead(options: OverheadOptions): Promise<ConfigSummary[]> {
  const chosen = Object.entries(CONFIGS).map(
    ([framework, configs]) =>
      [
        framework,
        configs.filter((c) => c === 'bare' || (options.only?.includes(c) ?? true)),
      ] as const,
  )
  const dir = mkdtempSync(join(tmpdir(), 'routemeter-bench-'))
  const runs = new Map<string, Run[]>()
  const key = (framework: string, config: string): string => `${framework} ${config}`
  try {
    for (let round = 1; round <= options.rounds; round++) {
      for (const [framework, configs] of chosen) {
        // Rotate the order each round: no configuration always runs first or last.
        const order = configs.map((_, i) => configs[(i + round - 1) % configs.length]!)
        for (const config of order) {
          let run = await measure(framework, config, round, options, dir)
          if (!(run.rps > 0)) {
            // Seen once on a loaded machine in a 1 s smoke run: not one response in time.
            // Once more; a second empty run is reported as a problem.
            options.log(`  round ${round} ${framework} ${config}: no response, measured again`)
            run = await measure(framework, config, round, options, dir)
          }
          const list = runs.get(key(framework, config)) ?? []
          list.push(run)
          runs.set(key(framework, config), list)
          options.log(
            `  round ${round}/${options.rounds} ${framework.padEnd(7)} ${config.padEnd(14)} ` +
              `${Math.round(run.rps)} req/s, p99 ${run.p99} ms, CPU ${run.cpuAllUs.toFixed(1)} µs/req` +
              `${run.errors + run.non2xx > 0 ? `, ${run.errors} errors, ${run.non2xx} non-2xx` : ''}`,
          )
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }

  const summaries: ConfigSummary[] = []
  for (const [framework, configs] of chosen) {
    const bare = runs.get(key(framework, 'bare')) ?? []
    const bareP50 = spread(bare.map((r) => r.p50))
    const bareP99 = spread(bare.map((r) => r.p99))
    const bareMain = spread(bare.map((r) => r.cpuMainUs))
    const bareAll = spread(bare.map((r) => r.cpuAllUs))
    for (const config of configs) {
      const list = runs.get(key(framework, config)) ?? []
      const rps = spread(list.map((r) => r.rps))
      const p50 = spread(list.map((r) => r.p50))
      const p99 = spread(list.map((r) => r.p99))
      const cpuMainUs = spread(list.map((r) => r.cpuMainUs))
      const cpuAllUs = spread(list.map((r) => r.cpuAllUs))
      // Each run against the bare run of its own round: a noisy moment hits both alike.
      const pairOf = (r: Run): Run | undefined => bare.find((b) => b.round === r.round)
      const added = list.map((r) => {
        const pair = pairOf(r)
        return pair === undefined ? Number.NaN : 1e6 / r.rps - 1e6 / pair.rps
      })
      const ratios = list.map((r) => {
        const pair = pairOf(r)
        return pair === undefined ? Number.NaN : r.rps / pair.rps
      })
      summaries.push({
        framework,
        config,
        label: LABELS[config] ?? config,
        runs: list,
        rps,
        p50,
        p99,
        ratio: spread(ratios).median,
        p50Ratio: p50.median / bareP50.median,
        p99Ratio: p99.median / bareP99.median,
        addedUs: spread(added),
        cpuMainUs,
        cpuAllUs,
        addedMainUs: cpuMainUs.median - bareMain.median,
        addedAllUs: cpuAllUs.median - bareAll.median,
      })
    }
  }
  return summaries
}
