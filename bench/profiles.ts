/**
 * Level 3's costs: an Express server whose endpoint does 1 ms of CPU work a
 * request, at level 2 and at level 3 (default sampling interval), under the
 * same fixed request rates, in alternating rounds: the process's CPU time per
 * second, and the p99 latency of another endpoint at level 2 served at the
 * same time. Then what the profiles weigh (bytes a day), and how long the
 * flame graph of a busy endpoint over 30 days takes to load.
 */
import Database from 'better-sqlite3'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeProfile } from 'routemeter/profiles'
import { DashboardService } from '../src-main/services/dashboard.js'
import { load, processCpu, sleep, spread, startServer, type Spread } from './lib.js'

export interface ProfileBenchOptions {
  quick: boolean
  log: (line: string) => void
}

export interface ProfileFigures {
  /** requests a second of the CPU-bound endpoint, and of the other one */
  rates: [number, number]
  seconds: number
  rounds: number
  /** CPU seconds per second of the server process, per configuration */
  cpu: Record<string, Spread>
  /** level 3's CPU over level 2's, per round */
  ratios: number[]
  /** p99 ms of the other endpoint, per configuration */
  otherP99: Record<string, Spread>
  /** the profile rows level 3 wrote in one run: count, bytes, samples, share of cpuWork */
  rows: number
  bytes: number
  samples: number
  cpuWorkShare: number
  /** one hour's row of the busy endpoint, bytes: a day is 24 of them per version and node */
  bytesPerHour: number
  /** the flame graph over 30 days (720 hourly rows): first and warm ms */
  flameFirstMs: number
  flameWarmMs: number
}

const CONFIGS = ['routemeter-2-cpu', 'routemeter-3-cpu'] as const

export async function runProfiles(options: ProfileBenchOptions): Promise<ProfileFigures> {
  const rounds = options.quick ? 1 : 5
  const seconds = options.quick ? 2 : 10
  const rates: [number, number] = [300, 100]
  const dir = mkdtempSync(join(tmpdir(), 'routemeter-profiles-'))
  const cpu: Record<string, number[]> = Object.fromEntries(CONFIGS.map((c) => [c, []]))
  const p99: Record<string, number[]> = Object.fromEntries(CONFIGS.map((c) => [c, []]))
  const ratios: number[] = []
  let lastLevel3Db = ''
  try {
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? CONFIGS : [...CONFIGS].reverse()
      const perRound: Record<string, number> = {}
      for (const config of order) {
        const db = join(dir, `${config}-${round}.db`)
        const server = await startServer('express', config, ['--db', db])
        try {
          await load(server.url, { seconds: 2, connections: 10, rate: rates[0] })
          const cpu0 = processCpu(server.pid)
          const started = performance.now()
          const [, other] = await Promise.all([
            load(server.url, { seconds, connections: 10, rate: rates[0] }),
            load(`${server.url}other`, { seconds, connections: 5, rate: rates[1] }),
          ])
          const used = (processCpu(server.pid) - cpu0) / ((performance.now() - started) / 1000)
          cpu[config]!.push(used)
          p99[config]!.push(other.p99)
          perRound[config] = used
          options.log(
            `  round ${round}/${rounds} ${config}: ${(used * 100).toFixed(1)}% of a core, /other p99 ${other.p99} ms`,
          )
        } finally {
          await server.stop()
        }
        if (config === 'routemeter-3-cpu') lastLevel3Db = db
      }
      ratios.push(perRound['routemeter-3-cpu']! / perRound['routemeter-2-cpu']!)
      await sleep(200)
    }
    const stored = readProfiles(lastLevel3Db)
    const flame = await timeFlameGraph(lastLevel3Db, join(dir, 'thirty-days.db'))
    return {
      rates,
      seconds,
      rounds,
      cpu: Object.fromEntries(CONFIGS.map((c) => [c, spread(cpu[c]!)])),
      ratios,
      otherP99: Object.fromEntries(CONFIGS.map((c) => [c, spread(p99[c]!)])),
      ...stored,
      ...flame,
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** What level 3 wrote for the CPU-bound endpoint in one run. */
function readProfiles(path: string) {
  const db = new Database(path, { readonly: true })
  try {
    const rows = db
      .prepare(
        `SELECT p.samples, p.tree FROM profile p JOIN endpoint e ON e.id = p.endpoint_id
         WHERE e.route = '/'`,
      )
      .all() as Array<{ samples: number; tree: Uint8Array }>
    let inWork = 0
    let samples = 0
    for (const row of rows) {
      const profile = decodeProfile(row.tree)
      for (const [stack, count] of profile.stacks) {
        samples += count
        if (stack.some((i) => profile.frames[i]!.name === 'cpuWork')) inWork += count
      }
    }
    const bytes = rows.reduce((n, r) => n + r.tree.byteLength, 0)
    return {
      rows: rows.length,
      bytes,
      samples,
      cpuWorkShare: samples === 0 ? 0 : inWork / samples,
      bytesPerHour: rows.length === 0 ? 0 : Math.max(...rows.map((r) => r.tree.byteLength)),
    }
  } finally {
    db.close()
  }
}

/**
 * A copy of the level-3 file whose busy endpoint has a row for every hour of
 * the last 30 days (the run's largest row, as a busy hour would be), and the
 * time the endpoint's flame graph over those days takes to load.
 */
async function timeFlameGraph(
  source: string,
  copy: string,
): Promise<{ flameFirstMs: number; flameWarmMs: number }> {
  copyFileSync(source, copy)
  const db = new Database(copy)
  const { endpointId, versionId, nodeId, tree, samples } = db
    .prepare(
      `SELECT p.endpoint_id AS endpointId, p.version_id AS versionId, p.node_id AS nodeId,
              p.tree, p.samples
       FROM profile p JOIN endpoint e ON e.id = p.endpoint_id
       WHERE e.route = '/' ORDER BY length(p.tree) DESC LIMIT 1`,
    )
    .get() as {
    endpointId: number
    versionId: number
    nodeId: number
    tree: Uint8Array
    samples: number
  }
  const now = Math.floor(Date.now() / 3_600_000)
  const insert = db.prepare('INSERT OR REPLACE INTO profile VALUES (?, ?, ?, ?, ?, 5000, ?)')
  db.transaction(() => {
    for (let h = 0; h < 30 * 24; h++)
      insert.run(endpointId, now - h, versionId, nodeId, samples, tree)
  })()
  db.close()
  const service = new DashboardService({ watch: false })
  try {
    await service.openFile({ path: copy })
    const args = {
      from: (now - 30 * 24) * 3_600_000,
      to: (now + 1) * 3_600_000,
      utcOffsetMinutes: 0,
      endpointId,
    }
    let started = performance.now()
    await service.profile(args)
    const flameFirstMs = performance.now() - started
    const warm: number[] = []
    for (let i = 0; i < 5; i++) {
      started = performance.now()
      await service.profile(args)
      warm.push(performance.now() - started)
    }
    warm.sort((a, b) => a - b)
    return { flameFirstMs, flameWarmMs: warm[2]! }
  } finally {
    await service.close()
  }
}
