import { DAY, HOUR, MINUTE } from './time'

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

export function formatCount(value: number): string {
  return integer.format(value)
}

/** Microseconds as milliseconds with about three significant digits: 0.042, 4.20, 42.0, 420. */
export function formatMs(us: number | null | undefined): string {
  if (us === null || us === undefined) return '–'
  const ms = us / 1000
  if (ms === 0) return '0'
  if (ms >= 100) return integer.format(Math.round(ms))
  if (ms >= 10) return ms.toFixed(1)
  if (ms >= 1) return ms.toFixed(2)
  return ms.toFixed(3)
}

/** Microseconds as "12.3 ms". */
export function formatDuration(us: number | null | undefined): string {
  return us === null || us === undefined ? '–' : `${formatMs(us)} ms`
}

function pad(value: number): string {
  return String(value).padStart(2, '0')
}

/** A point in time as 'YYYY-MM-DD HH:MM:SS', in local time or UTC. */
export function formatTime(time: number, utc: boolean): string {
  const d = new Date(time)
  if (utc) return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  )
}

/** A day as 'YYYY-MM-DD', in local time or UTC. */
export function formatDate(time: number, utc: boolean): string {
  return formatTime(time, utc).slice(0, 10)
}

/** '5 s ago', '3 min ago', '2 h ago', '4 days ago'; 'never' for null. */
export function formatRelative(time: number | null, now: number): string {
  if (time === null) return 'never'
  const age = now - time
  if (age < 0) return 'just now'
  if (age < MINUTE) return `${Math.max(1, Math.round(age / 1000))} s ago`
  if (age < HOUR) return `${Math.round(age / MINUTE)} min ago`
  if (age < DAY) return `${Math.round(age / HOUR)} h ago`
  const days = Math.round(age / DAY)
  if (days < 60) return `${days} day${days === 1 ? '' : 's'} ago`
  const months = Math.round(days / 30)
  if (months < 24) return `${months} months ago`
  return `${Math.round(days / 365)} years ago`
}

/** A 40-character git commit becomes its 7-character short form; other names stay. */
export function shortVersion(name: string): string {
  return /^[0-9a-f]{40}$/i.test(name) ? name.slice(0, 7) : name
}

/** A version as people name it: its release tag where its commit has one, else its short name. */
export function versionLabel(version: { name: string; tags: readonly string[] }): string {
  return version.tags[0] ?? shortVersion(version.name)
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']

/**
 * Short labels for a run of days on an axis: 'Mon 3', with the month on the
 * first day and where it changes ('Sat 1 Nov').
 */
export function formatDayColumns(days: readonly string[]): string[] {
  let month = ''
  return days.map((day) => {
    const label = formatDayLabel(day)
    const [weekday, date, monthName] = label.split(' ')
    const withMonth = monthName !== month
    month = monthName ?? ''
    return withMonth ? label : `${weekday} ${date}`
  })
}

/** 'Mon 3 Feb' style label for a 'YYYY-MM-DD' day, for chart axes. */
export function formatDayLabel(day: string): string {
  const d = new Date(`${day}T00:00:00Z`)
  const weekday = WEEKDAYS[d.getUTCDay()]
  const month = [
    'Jan',
    'Feb',
    'Mar',
    'Apr',
    'May',
    'Jun',
    'Jul',
    'Aug',
    'Sep',
    'Oct',
    'Nov',
    'Dec',
  ][d.getUTCMonth()]
  return `${weekday} ${d.getUTCDate()} ${month}`
}

/** A share (0 to 1) as a percentage, one decimal: '12.5%'; '–' for none. */
export function formatShare(share: number | null): string {
  return share === null ? '–' : `${(share * 100).toFixed(1)}%`
}

/** A change in % with its sign, one decimal: '+12.5%', '-3.0%'; '–' for none. */
export function formatChange(percent: number | null): string {
  return percent === null ? '–' : `${percent > 0 ? '+' : ''}${percent.toFixed(1)}%`
}
