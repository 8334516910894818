import type { MonitorLevel } from '../api'

/** What each monitoring level keeps, in one line (the level control, the overview's legend). */
export const LEVEL_SUMMARY: Record<MonitorLevel, string> = {
  0: 'only the last request time is kept',
  1: 'every request is recorded',
  2: 'every request, and slow outliers with what they waited on',
  3: 'level 2, and where its CPU time goes (profiles)',
}
