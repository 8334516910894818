/**
 * Level 3: a real Express app with two endpoints doing different CPU work
 * (named functions), their requests interleaved, at level 3. Each endpoint's
 * merged profile is dominated by its own function and holds almost none of
 * the other's; the profiler stops when the level goes back to 2 (its state,
 * not a timing); a stored profile exports as a `.cpuprofile`.
 */
import express from 'express'
import { afterAll, describe, expect, it } from 'vitest'
import { bind } from 'routemeter'
import { DashboardService } from '../../src-main/services/dashboard.js'
import {
  decodeProfile,
  sampleCount,
  toCpuProfile,
  type FoldedProfile,
} from '../../collector/src/profiles/folded.js'
import { defer, listen, removeTempDirs, request, tempDatabase, waitFor, withDb } from './helpers.js'

afterAll(removeTempDirs)

/** Busy for `ms` of CPU in a function of its own name. */
function primeWork(ms: number): number {
  const end = performance.now() + ms
  let found = 0
  for (let n = 2; performance.now() < end; n++) {
    let prime = true
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false
        break
      }
    }
    if (prime) found++
  }
  return found
}

function sortWork(ms: number): number {
  const end = performance.now() + ms
  let rounds = 0
  while (performance.now() < end) {
    const values = Array.from({ length: 2000 }, (_, i) => (i * 7919) % 2003)
    values.sort((a, b) => a - b)
    rounds++
  }
  return rounds
}

/** 150 ms of CPU: what makes the outlier slow. */
function slowPath(): number {
  return primeWork(150)
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

/** Each request works in slices with turns of the event loop between: requests interleave. */
function app() {
  const server = express()
  server.get('/primes', async (_req, res) => {
    let total = 0
    for (let slice = 0; slice < 5; slice++) {
      total += primeWork(4)
      await nextTurn()
    }
    res.json({ total })
  })
  server.get('/sorted', async (_req, res) => {
    let total = 0
    for (let slice = 0; slice < 5; slice++) {
      total += sortWork(4)
      await nextTurn()
    }
    res.json({ total })
  })
  return server
}

interface StoredProfile {
  route: string
  samples: number
  profile: FoldedProfile
}

function storedProfiles(database: string): StoredProfile[] {
  return withDb(database, (db) =>
    (
      db
        .prepare(
          `SELECT e.route, p.samples, p.tree FROM profile p JOIN endpoint e ON e.id = p.endpoint_id`,
        )
        .all() as Array<{ route: string; samples: number; tree: Uint8Array }>
    ).map((row) => ({ route: row.route, samples: row.samples, profile: decodeProfile(row.tree) })),
  )
}

/** The share of a profile's samples whose stack holds a function of that name. */
function shareOf(profile: FoldedProfile, name: string): number {
  let inside = 0
  for (const [stack, samples] of profile.stacks) {
    if (stack.some((i) => profile.frames[i]!.name === name)) inside += samples
  }
  return inside / sampleCount(profile)
}

describe('level 3 profiles', () => {
  it("gives each endpoint its own function's samples, also when requests of both interleave", async () => {
    const database = tempDatabase()
    const server = app()
    const handle = bind(server, {
      database,
      defaultLevel: 3,
      profiles: { samplingInterval: 1 },
    })
    defer(() => handle.close())
    const { url } = await listen(server)
    expect(handle.stats().profiling).toBe(true)
    for (let round = 0; round < 12; round++) {
      await Promise.all([
        request(`${url}/primes`),
        request(`${url}/sorted`),
        request(`${url}/primes`),
        request(`${url}/sorted`),
      ])
    }
    handle.close()
    const profiles = storedProfiles(database)
    const primes = profiles.filter((p) => p.route === '/primes')
    const sorted = profiles.filter((p) => p.route === '/sorted')
    expect(primes.length).toBeGreaterThan(0)
    expect(sorted.length).toBeGreaterThan(0)
    // 24 requests x 20 ms of CPU each at 1 ms: hundreds of samples per endpoint.
    const all = (list: StoredProfile[]) => list.reduce((n, p) => n + p.samples, 0)
    expect(all(primes)).toBeGreaterThan(200)
    expect(all(sorted)).toBeGreaterThan(200)
    for (const p of primes) {
      expect(p.samples).toBe(sampleCount(p.profile))
      expect(shareOf(p.profile, 'primeWork')).toBeGreaterThan(0.8)
      expect(shareOf(p.profile, 'sortWork')).toBeLessThan(0.05)
    }
    for (const p of sorted) {
      expect(shareOf(p.profile, 'sortWork')).toBeGreaterThan(0.8)
      expect(shareOf(p.profile, 'primeWork')).toBeLessThan(0.05)
    }
  })

  it('stops the profiler when no endpoint is at level 3 any more, and never starts it below', async () => {
    const database = tempDatabase()
    const server = app()
    const handle = bind(server, { database, defaultLevel: 2, levelPollInterval: 100 })
    defer(() => handle.close())
    const { url } = await listen(server)
    await request(`${url}/primes`)
    expect(handle.stats().profiling).toBe(false)
    handle.flush()
    // The desktop app sets /primes to level 3, then back to 2; the collector polls the levels.
    const setLevel = async (level: number) => {
      withDb(database, (db) =>
        db.prepare("UPDATE endpoint SET monitor_level = ? WHERE route = '/primes'").run(level),
      )
      await waitFor(
        `the profiler ${level === 3 ? 'on' : 'off'}`,
        () => handle.stats().profiling === (level === 3),
      )
    }
    await setLevel(3)
    for (let i = 0; i < 5; i++) await request(`${url}/primes`)
    await setLevel(2)
    handle.flush()
    const profiles = storedProfiles(database)
    expect(profiles.map((p) => p.route)).toEqual(['/primes'])
    // Code V8 optimized before level 3 began may have primeWork inlined into the handler:
    // the samples are this file's code either way.
    const profile = profiles[0]!.profile
    let here = 0
    for (const [stack, samples] of profile.stacks) {
      if (stack.some((i) => profile.frames[i]!.url.endsWith('profiles.test.ts'))) here += samples
    }
    expect(here / sampleCount(profile)).toBeGreaterThan(0.5)
  })

  it('a stored profile exports as a .cpuprofile: a tree of call frames, samples and time deltas', async () => {
    const database = tempDatabase()
    const server = app()
    const handle = bind(server, { database, defaultLevel: 3 })
    defer(() => handle.close())
    const { url } = await listen(server)
    for (let i = 0; i < 6; i++) await request(`${url}/sorted`)
    handle.close()
    const [stored] = storedProfiles(database)
    const exported = JSON.parse(JSON.stringify(toCpuProfile(stored!.profile))) as ReturnType<
      typeof toCpuProfile
    >
    const ids = new Set(exported.nodes.map((n) => n.id))
    expect(ids.size).toBe(exported.nodes.length)
    expect(exported.nodes[0]!.callFrame.functionName).toBe('(root)')
    for (const node of exported.nodes)
      for (const child of node.children) expect(ids.has(child)).toBe(true)
    expect(exported.samples).toHaveLength(stored!.samples)
    expect(exported.timeDeltas).toHaveLength(exported.samples.length)
    for (const sample of exported.samples) expect(ids.has(sample)).toBe(true)
    expect(exported.endTime - exported.startTime).toBe(stored!.samples * stored!.profile.intervalUs)
    expect(exported.nodes.some((n) => n.callFrame.functionName === 'sortWork')).toBe(true)
  })

  it('an outlier at level 3 keeps its own profile, where its slow function shows', async () => {
    const database = tempDatabase()
    const server = express()
    server.get('/report', (req, res) => {
      res.json({ n: req.query.slow === undefined ? primeWork(1) : slowPath() })
    })
    const handle = bind(server, { database, defaultLevel: 3, profiles: { samplingInterval: 1 } })
    defer(() => handle.close())
    const { url } = await listen(server)
    for (let i = 0; i < 25; i++) await request(`${url}/report`)
    // The endpoint's threshold is computed by the next sweep (every 50 ms).
    await new Promise((resolve) => setTimeout(resolve, 150))
    await request(`${url}/report?slow=1`)
    const row = await waitFor('the outlier with its profile', () => {
      handle.flush()
      return withDb(database, (db) =>
        db.prepare('SELECT profile FROM outlier WHERE profile IS NOT NULL').get(),
      ) as { profile: Uint8Array } | undefined
    })
    const own = decodeProfile(row.profile)
    // 150 ms at 1 ms: fewer when the machine is busy (the sampler is a thread of its own).
    expect(sampleCount(own)).toBeGreaterThan(15)
    expect(shareOf(own, 'slowPath')).toBeGreaterThan(0.8)
  })

  it('two versions where one function was made slower: the profile view shows it taking more of the time', async () => {
    const database = tempDatabase()
    /** Version 2's formatPrice does three times the work of version 1's. */
    const start = async (version: string, formatMs: number) => {
      const server = express()
      const formatPrice = (ms: number) => primeWork(ms)
      server.get('/price', (_req, res) => {
        res.json({ base: sortWork(2), formatted: formatPrice(formatMs) })
      })
      const handle = bind(server, {
        database,
        version,
        defaultLevel: 3,
        profiles: { samplingInterval: 1 },
      })
      const { url } = await listen(server)
      for (let i = 0; i < 30; i++) await request(`${url}/price`)
      handle.close()
    }
    await start('v1', 1)
    await start('v2', 3)
    const service = new DashboardService({ watch: false })
    defer(() => service.close())
    await service.openFile({ path: database })
    const range = { from: Date.now() - 3_600_000, to: Date.now() + 60_000, utcOffsetMinutes: 0 }
    const endpointId = (await service.endpoints(range)).find((e) => e.route === '/price')!.id
    const all = await service.profile({ ...range, endpointId })
    const id = (name: string) => all.versions.find((v) => v.name === name)!.id
    const share = async (version: string) => {
      const { profile } = await service.profile({ ...range, endpointId, versionIds: [id(version)] })
      return shareOf(profile!, 'formatPrice')
    }
    const [before, after] = [await share('v1'), await share('v2')]
    // 1 ms of 3 against 3 ms of 5: about a third, then about three fifths.
    expect(before).toBeGreaterThan(0.15)
    expect(before).toBeLessThan(0.5)
    expect(after).toBeGreaterThan(before + 0.15)
  })

  it('a bad profiles option is a TypeError that names it', () => {
    const server = express()
    expect(() =>
      bind(server, { database: tempDatabase(), profiles: { samplingInterval: 0 } }),
    ).toThrow(/"profiles.samplingInterval" must be a number of milliseconds from 0.1 to 100, got/)
    expect(() =>
      bind(server, { database: tempDatabase(), profiles: { interval: 5 } as never }),
    ).toThrow(/unknown option "profiles.interval"/)
  })
})
