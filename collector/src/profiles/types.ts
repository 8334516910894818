/*
 * The shapes of level 3's profiles (profiles/folded.ts). Types only: the
 * desktop app's renderer reads them without the code behind them.
 */

/** One frame of a stack. */
export interface ProfileFrame {
  name: string
  url: string
  /** 1-based, as editors count; 0 when unknown */
  line: number
}

export interface FoldedProfile {
  /** µs between two samples */
  intervalUs: number
  frames: ProfileFrame[]
  /** [frame indexes from the root down, samples] */
  stacks: Array<[number[], number]>
}

/** A Chrome DevTools `.cpuprofile` (what DevTools, VS Code and speedscope open). */
export interface CpuProfile {
  nodes: Array<{
    id: number
    callFrame: {
      functionName: string
      scriptId: string
      url: string
      lineNumber: number
      columnNumber: number
    }
    hitCount: number
    children: number[]
  }>
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}
