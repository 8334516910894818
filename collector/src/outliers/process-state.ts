/*
 * The process around an outlier: CPU, memory, event-loop delay and
 * utilization, and the stretches when the event loop was blocked. Sampled
 * by the watch's sweep, and only while some endpoint is at level 2 or 3.
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks'
import type { EventLoopUtilization } from 'node:perf_hooks'

/** A tick later than planned by at least this much, ms, counts as the loop being blocked. */
export const BLOCK_MIN_MS = 20
/** Blocked stretches remembered (the oldest go first). */
const MAX_BLOCKS = 256
/** Length of the window CPU, delay and utilization are given over, ms. */
const WINDOW_MS = 1000

interface Window {
  at: number
  cpu: NodeJS.CpuUsage
  elu: EventLoopUtilization
}

export interface LoopState {
  cpuPercent: number
  loopDelayMaxMs: number
  loopDelayP99Ms: number
  loopUtilization: number
}

export class ProcessSampler {
  private delay: IntervalHistogram | undefined
  /** the window's start marks: the previous one gives "the last second" */
  private previous: Window | undefined
  private current: Window | undefined
  private lastDelay = { max: 0, p99: 0 }
  private lastTick = 0
  /** blocked stretches as [start, end] pairs, ms on performance.now()'s clock */
  private readonly blocks: number[] = []

  start(now: number): void {
    this.delay = monitorEventLoopDelay({ resolution: 10 })
    this.delay.enable()
    this.current = { at: now, cpu: process.cpuUsage(), elu: performance.eventLoopUtilization() }
    this.previous = this.current
    this.lastTick = now
  }

  stop(): void {
    this.delay?.disable()
    this.delay = undefined
    this.blocks.length = 0
  }

  /** Called every `interval` ms: a tick that comes late means the loop was blocked. */
  tick(now: number, interval: number): void {
    const late = now - this.lastTick - interval
    this.lastTick = now
    if (late >= BLOCK_MIN_MS) {
      if (this.blocks.length >= 2 * MAX_BLOCKS) this.blocks.splice(0, 2)
      this.blocks.push(now - late, now)
    }
    if (this.current !== undefined && now - this.current.at >= WINDOW_MS) {
      const delay = this.delay
      if (delay !== undefined) {
        this.lastDelay = { max: delay.max / 1e6, p99: delay.percentile(99) / 1e6 }
        delay.reset()
      }
      this.previous = this.current
      this.current = { at: now, cpu: process.cpuUsage(), elu: performance.eventLoopUtilization() }
    }
  }

  /** CPU, delay and utilization over about the last second. */
  loop(now: number): LoopState {
    const since = this.previous
    if (since === undefined) {
      return { cpuPercent: 0, loopDelayMaxMs: 0, loopDelayP99Ms: 0, loopUtilization: 0 }
    }
    const cpu = process.cpuUsage(since.cpu)
    const elapsedMs = Math.max(1, now - since.at)
    // The window's delay, or, in its first second, what the histogram holds so far.
    const delay = this.delay
    const max = Math.max(this.lastDelay.max, delay === undefined ? 0 : delay.max / 1e6)
    const p99 = Math.max(
      this.lastDelay.p99,
      delay === undefined || delay.count === 0 ? 0 : delay.percentile(99) / 1e6,
    )
    return {
      cpuPercent: round1(((cpu.user + cpu.system) / 1000 / elapsedMs) * 100),
      loopDelayMaxMs: round1(max),
      loopDelayP99Ms: round1(p99),
      loopUtilization: round3(performance.eventLoopUtilization(since.elu).utilization),
    }
  }

  /** ms the loop was blocked between `from` and `to` (performance.now() times), as the ticks saw. */
  blockedDuring(from: number, to: number): number {
    let blocked = 0
    const blocks = this.blocks
    for (let i = 0; i < blocks.length; i += 2) {
      const overlap = Math.min(to, blocks[i + 1]!) - Math.max(from, blocks[i]!)
      if (overlap > 0) blocked += overlap
    }
    return Math.round(blocked)
  }
}

function round1(value: number): number {
  return Math.round(value * 10) / 10
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000
}
