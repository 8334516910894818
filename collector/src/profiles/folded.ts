/*
 * Level 3's profiles as stored: folded stacks. A profile is a list of
 * distinct frames (function, file, line) and, per distinct call stack (root
 * first, as frame indexes), how many CPU samples ended in it. Merging two
 * profiles adds the counts of equal stacks, so an endpoint's hour of samples
 * stays one row however many requests it had. Stored as deflated JSON;
 * the desktop app builds its flame graphs and `.cpuprofile` exports from it.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import type { CpuProfile, FoldedProfile, ProfileFrame } from './types.js'

export type { CpuProfile, FoldedProfile, ProfileFrame } from './types.js'

/** Samples in a profile. */
export function sampleCount(profile: FoldedProfile): number {
  let count = 0
  for (const [, samples] of profile.stacks) count += samples
  return count
}

const frameKey = (frame: ProfileFrame) => `${frame.name}\t${frame.url}\t${frame.line}`

/** Builds a profile by adding stacks of frames one by one (frames and stacks deduplicated). */
export class FoldedBuilder {
  private readonly frameIndex = new Map<string, number>()
  private readonly frames: ProfileFrame[] = []
  private readonly stacks = new Map<string, [number[], number]>()

  constructor(private readonly intervalUs: number) {}

  frame(frame: ProfileFrame): number {
    const key = frameKey(frame)
    let index = this.frameIndex.get(key)
    if (index === undefined) {
      index = this.frames.length
      this.frames.push(frame)
      this.frameIndex.set(key, index)
    }
    return index
  }

  /** Adds `samples` to the stack of frame indexes (root first). */
  add(stack: number[], samples: number): void {
    const key = stack.join(',')
    const entry = this.stacks.get(key)
    if (entry === undefined) this.stacks.set(key, [stack, samples])
    else entry[1] += samples
  }

  /** Adds a whole profile (its frames mapped onto this one's). */
  merge(profile: FoldedProfile): void {
    const map = profile.frames.map((frame) => this.frame(frame))
    for (const [stack, samples] of profile.stacks) {
      this.add(
        stack.map((i) => map[i]!),
        samples,
      )
    }
  }

  get empty(): boolean {
    return this.stacks.size === 0
  }

  build(): FoldedProfile {
    return { intervalUs: this.intervalUs, frames: this.frames, stacks: [...this.stacks.values()] }
  }
}

/** Two profiles as one (the first one's interval: the profiles of one endpoint share it). */
export function mergeProfiles(a: FoldedProfile, b: FoldedProfile): FoldedProfile {
  const builder = new FoldedBuilder(a.intervalUs)
  builder.merge(a)
  builder.merge(b)
  return builder.build()
}

export function encodeProfile(profile: FoldedProfile): Buffer {
  return deflateRawSync(JSON.stringify(profile))
}

/** A stored profile; throws on bytes that are not one. */
export function decodeProfile(bytes: Uint8Array): FoldedProfile {
  const value = JSON.parse(inflateRawSync(bytes).toString('utf8')) as FoldedProfile
  if (!Array.isArray(value.frames) || !Array.isArray(value.stacks)) {
    throw new TypeError('routemeter: not a stored profile')
  }
  return value
}

/**
 * A profile as a `.cpuprofile`: the call tree of its stacks, each stack's
 * samples one after another at the profile's interval (a folded profile
 * keeps how much time went where, not when).
 */
export function toCpuProfile(profile: FoldedProfile): CpuProfile {
  const nodes: CpuProfile['nodes'] = [
    {
      id: 1,
      callFrame: {
        functionName: '(root)',
        scriptId: '0',
        url: '',
        lineNumber: -1,
        columnNumber: -1,
      },
      hitCount: 0,
      children: [],
    },
  ]
  const childOf = new Map<string, number>()
  const samples: number[] = []
  for (const [stack, count] of profile.stacks) {
    let parent = 1
    for (const frameIndex of stack) {
      const key = `${parent}/${frameIndex}`
      let id = childOf.get(key)
      if (id === undefined) {
        const frame = profile.frames[frameIndex]!
        id = nodes.length + 1
        nodes.push({
          id,
          callFrame: {
            functionName: frame.name,
            scriptId: '0',
            url: frame.url,
            // 0-based in the format
            lineNumber: frame.line - 1,
            columnNumber: -1,
          },
          hitCount: 0,
          children: [],
        })
        nodes[parent - 1]!.children.push(id)
        childOf.set(key, id)
      }
      parent = id
    }
    nodes[parent - 1]!.hitCount += count
    for (let i = 0; i < count; i++) samples.push(parent)
  }
  const timeDeltas = samples.map(() => profile.intervalUs)
  return {
    nodes,
    startTime: 0,
    endTime: samples.length * profile.intervalUs,
    samples,
    timeDeltas,
  }
}
