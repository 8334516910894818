/** What the profile views compute from a folded profile (routemeter/profiles). */
import type { FoldedProfile, ProfileFrame } from '../api'

/** A function: its name, file and line (frames equal in these are one function). */
export const frameKey = (frame: ProfileFrame): string =>
  `${frame.name}\t${frame.url}\t${frame.line}`

export function sampleCount(profile: FoldedProfile | null): number {
  return profile?.stacks.reduce((n, [, samples]) => n + samples, 0) ?? 0
}

/**
 * Each function's share of all samples: total (anywhere on the stack, counted
 * once per stack) and self (on top of it).
 */
export function functionShares(
  profile: FoldedProfile,
): Map<string, { frame: ProfileFrame; total: number; self: number }> {
  const shares = new Map<string, { frame: ProfileFrame; total: number; self: number }>()
  const all = Math.max(1, sampleCount(profile))
  const entry = (i: number) => {
    const frame = profile.frames[i]!
    const key = frameKey(frame)
    let found = shares.get(key)
    if (found === undefined) shares.set(key, (found = { frame, total: 0, self: 0 }))
    return found
  }
  for (const [stack, samples] of profile.stacks) {
    // A recursive function is on the stack more than once: its share counts once.
    for (const i of new Set(stack)) entry(i).total += samples / all
    entry(stack[stack.length - 1]!).self += samples / all
  }
  return shares
}
