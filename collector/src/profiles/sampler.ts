/*
 * Level 3: while some endpoint is at level 3, V8's CPU profiler samples the
 * process (node:inspector, in-process: no dependency, nothing to install),
 * and each sample goes to the request whose code was running.
 *
 * Attribution. Requests run in their AsyncLocalStorage context (level 2's).
 * While sampling, an async hook notes each switch of the running code from
 * one request to another (or to none): `before` a callback runs, the
 * context's store is the request it belongs to. Entering a request's context
 * synchronously (the adapters' run) is noted too. Every 10 s the profile is
 * taken, its samples (timestamped on the same
 * monotonic clock) are matched against the switches, and each sample's stack
 * is added to its request's endpoint and hour. Limits: a sample is CPU time
 * on the main thread, so time spent waiting (I/O, timers) is level 2's
 * waterfall, not a sample; work a request leaves to another context (a
 * worker thread, a pool shared by requests) is not its own; native code
 * between callbacks ('(program)', the garbage collector) goes to the
 * request that ran last.
 */
import { createHook, type AsyncHook, type AsyncLocalStorage } from 'node:async_hooks'
import { Session } from 'node:inspector'
import { performance } from 'node:perf_hooks'
import { FoldedBuilder, type FoldedProfile, type ProfileFrame } from './folded.js'

/** How often the profile is taken and attributed (each restart logs the code anew: about 10 ms). */
const WINDOW_MS = 10_000
/** Switches kept per window, at most; beyond, samples until the window's end are not attributed. */
const MAX_SWITCHES = 1_000_000
const HOUR_MS = 3_600_000

/** One endpoint's samples of one hour, for the writer. */
export interface ProfileRecord {
  slot: number
  /** hours since the epoch */
  hour: number
  profile: FoldedProfile
}

/** A request whose samples are kept on it too (its own profile, should it be an outlier). */
export interface ProfiledRequest {
  profile?: FoldedBuilder
}

export interface ProfileHost {
  /** The slot of the endpoint at level 3 a request belongs to; undefined when none is (yet). */
  slotOf(request: object): number | undefined
  report(error: unknown, kind: string): void
}

interface V8Profile {
  nodes: Array<{
    id: number
    callFrame: { functionName: string; url: string; lineNumber: number }
    children?: number[]
  }>
  startTime: number
  samples?: number[]
  timeDeltas?: number[]
}

export class ProfileSampler {
  private session: Session | undefined
  private hook: AsyncHook | undefined
  private timer: NodeJS.Timeout | undefined
  /** performance.now() of each switch, and who runs from then on */
  private times: number[] = []
  private owners: Array<object | undefined> = []
  private current: object | undefined
  private overflow = false
  /** V8's timestamps (µs on the monotonic clock) minus performance.now() in µs */
  private clockOffsetUs = 0
  private readonly pending = new Map<
    string,
    { slot: number; hour: number; builder: FoldedBuilder }
  >()

  constructor(
    private readonly intervalUs: number,
    private readonly context: AsyncLocalStorage<object>,
    private readonly host: ProfileHost,
  ) {}

  /** Whether V8's profiler runs (only while some endpoint is at level 3). */
  get running(): boolean {
    return this.session !== undefined
  }

  setActive(active: boolean): void {
    if (active === this.running) return
    if (active) this.start()
    else this.stop()
  }

  /** Attributes the samples so far now (before levels change, so they go to the endpoints sampled). */
  attributeNow(): void {
    this.collect(true)
  }

  /** Notes that `owner`'s code runs from now (undefined: no request's). */
  mark(owner: object | undefined): void {
    if (this.session === undefined || owner === this.current) return
    this.current = owner
    if (this.times.length >= MAX_SWITCHES) {
      this.overflow = true
      return
    }
    this.times.push(performance.now())
    this.owners.push(owner)
  }

  /** Whether samples wait to be taken. */
  get hasSamples(): boolean {
    return this.pending.size > 0
  }

  /** The samples attributed since the last call, one record per endpoint and hour. */
  take(): ProfileRecord[] {
    const records: ProfileRecord[] = []
    for (const { slot, hour, builder } of this.pending.values()) {
      records.push({ slot, hour, profile: builder.build() })
    }
    this.pending.clear()
    return records
  }

  private start(): void {
    const session = new Session()
    session.connect()
    session.post('Profiler.enable')
    session.post('Profiler.setSamplingInterval', { interval: this.intervalUs })
    this.session = session
    this.startProfiler(true)
    this.clockOffsetUs = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000
    this.resetTimeline()
    // `before` only: an `after` hook doubles the calls (every promise of the process), and
    // the next callback's `before` comes before any other JS runs (docs/benchmarks.md, Level 3).
    this.hook = createHook({ before: () => this.mark(this.context.getStore()) }).enable()
    this.timer = setInterval(() => this.collect(true), WINDOW_MS).unref()
  }

  /**
   * Starts V8's profiler. At its first start it logs the code that exists,
   * and code compiled before, whose source positions V8 keeps lazily, is
   * logged without its function's name and line; that start makes them
   * available, so a throwaway start and stop comes first (checked by
   * test/collector/profiles.test.ts, which turns level 3 on for hot code).
   */
  private startProfiler(first: boolean): void {
    const session = this.session!
    if (first) {
      session.post('Profiler.start')
      session.post('Profiler.stop')
    }
    session.post('Profiler.start')
  }

  private stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.hook?.disable()
    this.hook = undefined
    this.collect(false)
    const session = this.session
    this.session = undefined
    session?.post('Profiler.disable')
    session?.disconnect()
    this.current = undefined
  }

  private resetTimeline(): void {
    this.times = [performance.now()]
    this.owners = [this.current]
    this.overflow = false
  }

  /** Takes the profile so far (and starts the next one), and attributes its samples. */
  private collect(restart: boolean): void {
    const session = this.session
    if (session === undefined) return
    try {
      let profile: V8Profile | undefined
      // In-process, the inspector answers synchronously.
      session.post('Profiler.stop', (error, result) => {
        if (error === null) profile = (result as { profile: V8Profile }).profile
      })
      if (restart) this.startProfiler(false)
      const times = this.times
      const owners = this.owners
      const overflow = this.overflow
      this.resetTimeline()
      if (profile !== undefined) this.attribute(profile, times, owners, overflow)
    } catch (error) {
      this.host.report(error, 'profiles')
    }
  }

  private attribute(
    profile: V8Profile,
    times: number[],
    owners: Array<object | undefined>,
    overflow: boolean,
  ): void {
    const samples = profile.samples ?? []
    const deltas = profile.timeDeltas ?? []
    if (samples.length === 0) return
    const parent = new Map<number, number>()
    const byId = new Map<number, V8Profile['nodes'][number]>()
    for (const node of profile.nodes) {
      byId.set(node.id, node)
      for (const child of node.children ?? []) parent.set(child, node.id)
    }
    // A node's stack, root first, without V8's (root); null for the idle loop.
    const stacks = new Map<number, ProfileFrame[] | null>()
    const stackOf = (id: number): ProfileFrame[] | null => {
      let stack = stacks.get(id)
      if (stack !== undefined) return stack
      const frames: ProfileFrame[] = []
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const { functionName, url, lineNumber } = byId.get(at)!.callFrame
        if (functionName === '(root)') break
        if (functionName === '(idle)') {
          stacks.set(id, null)
          return null
        }
        frames.push({ name: functionName || '(anonymous)', url, line: lineNumber + 1 })
      }
      stack = frames.reverse()
      stacks.set(id, stack)
      return stack
    }
    const slots = new Map<object, number | undefined>()
    const lastTime = overflow ? times[times.length - 1]! : Number.POSITIVE_INFINITY
    const epochOffset = Date.now() - performance.now()
    let at = profile.startTime
    let switchIndex = 0
    for (let i = 0; i < samples.length; i++) {
      at += deltas[i] ?? 0
      const time = (at - this.clockOffsetUs) / 1000
      if (time > lastTime) break
      while (switchIndex + 1 < times.length && times[switchIndex + 1]! <= time) switchIndex++
      const owner = times[switchIndex]! <= time ? owners[switchIndex] : undefined
      if (owner === undefined) continue
      let slot = slots.get(owner)
      if (!slots.has(owner)) {
        slot = this.host.slotOf(owner)
        slots.set(owner, slot)
      }
      if (slot === undefined) continue
      const stack = stackOf(samples[i]!)
      if (stack === null || stack.length === 0) continue
      const hour = Math.floor((time + epochOffset) / HOUR_MS)
      const key = `${slot},${hour}`
      let entry = this.pending.get(key)
      if (entry === undefined) {
        entry = { slot, hour, builder: new FoldedBuilder(this.intervalUs) }
        this.pending.set(key, entry)
      }
      const builder = entry.builder
      builder.add(
        stack.map((frame) => builder.frame(frame)),
        1,
      )
      const own = ((owner as ProfiledRequest).profile ??= new FoldedBuilder(this.intervalUs))
      own.add(
        stack.map((frame) => own.frame(frame)),
        1,
      )
    }
  }
}
