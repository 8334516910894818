export const MINUTE = 60_000
export const HOUR = 60 * MINUTE
export const DAY = 24 * HOUR

/** Start of the day that contains `time`, in a fixed offset from UTC. */
export function startOfDay(time: number, utcOffsetMinutes: number): number {
  const shift = utcOffsetMinutes * MINUTE
  return Math.floor((time + shift) / DAY) * DAY - shift
}

/** 'YYYY-MM-DD' of `time` in the offset. */
export function dayKey(time: number, utcOffsetMinutes: number): string {
  return new Date(time + utcOffsetMinutes * MINUTE).toISOString().slice(0, 10)
}

/** Start of the day 'YYYY-MM-DD' in the offset; NaN for a malformed key. */
export function parseDayKey(key: string, utcOffsetMinutes: number): number {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(key)) return Number.NaN
  return Date.parse(`${key}T00:00:00Z`) - utcOffsetMinutes * MINUTE
}

/** The viewer's offset now, or 0 when the UI shows UTC. */
export function viewerOffset(utc: boolean, now: number): number {
  return utc ? 0 : -new Date(now).getTimezoneOffset()
}
