/**
 * When requests arrive: user groups, office hours and holidays, and the plan of
 * requests per group and hour.
 */
import { MS_PER_HOUR, MS_PER_MINUTE, type TrafficModel, type UserModel } from './model.js'
import { AliasTable, Random } from './random.js'

/** A user group with the same office hours: users in one time zone, or integrations. */
export interface Group {
  utcOffsetMinutes: number
  bot: boolean
  users: UserModel[]
  /** users active now, and a table to pick one by load */
  active: number[]
  table: AliasTable | undefined
}

/** Relative traffic by local hour for people at work: a morning and an afternoon peak. */
export function officeHours(hour: number): number {
  return 0.06 + Math.exp(-((hour - 10.5) ** 2) / 6) + 0.8 * Math.exp(-((hour - 15) ** 2) / 5)
}

/** Days most offices are closed (local): Christmas to New Year, and 1 May. */
export function isHoliday(month: number, day: number): boolean {
  return (month === 11 && day >= 24) || (month === 0 && day === 1) || (month === 4 && day === 1)
}

export function groupsOf(model: TrafficModel): Group[] {
  const byKey = new Map<string, Group>()
  for (const user of model.users) {
    const key = user.bot ? 'bot' : String(user.utcOffsetMinutes)
    let group = byKey.get(key)
    if (group === undefined) {
      group = {
        utcOffsetMinutes: user.utcOffsetMinutes,
        bot: user.bot,
        users: [],
        active: [],
        table: undefined,
      }
      byKey.set(key, group)
    }
    group.users.push(user)
  }
  return [...byKey.values()]
}

/** Sum of the loads of the users active at `time`; refreshes the group's pick table. */
export function refreshGroup(group: Group, time: number): number {
  group.active = []
  let load = 0
  group.users.forEach((user, i) => {
    if (user.activeFrom <= time && time < user.activeTo) {
      group.active.push(i)
      load += user.load
    }
  })
  group.table =
    group.active.length === 0
      ? undefined
      : new AliasTable(group.active.map((i) => group.users[i]!.load))
  return load
}

/** Relative traffic of a group in the hour starting at `hourStart`, before its user load. */
export function groupShape(group: Group, hourStart: number, model: TrafficModel): number {
  const growth = 1 + (model.growth * (hourStart - model.from)) / (model.to - model.from)
  if (group.bot) return growth
  const local = new Date(hourStart + MS_PER_HOUR / 2 + group.utcOffsetMinutes * MS_PER_MINUTE)
  const weekday = local.getUTCDay()
  const closed =
    weekday === 0 || weekday === 6 || isHoliday(local.getUTCMonth(), local.getUTCDate())
  return officeHours(local.getUTCHours() + local.getUTCMinutes() / 60) * (closed ? 0.3 : 1) * growth
}

/**
 * The expected traffic of each group in each hour (with some noise), and the
 * number of requests per hour: cumulative rounding makes them add up to
 * exactly `model.requests`.
 */
export function plan(
  model: TrafficModel,
  groups: Group[],
  random: Random,
): { hours: number; weights: Float64Array; counts: Uint32Array } {
  const hours = Math.ceil((model.to - model.from) / MS_PER_HOUR)
  const g = groups.length
  // One more column: the scanners probing for URLs the app does not have.
  const weights = new Float64Array(hours * (g + 1))
  let userTotal = 0
  const loads = new Float64Array(g)
  for (let h = 0; h < hours; h++) {
    const hourStart = model.from + h * MS_PER_HOUR
    const length = Math.min(MS_PER_HOUR, model.to - hourStart) / MS_PER_HOUR
    const mid = hourStart + MS_PER_HOUR / 2
    for (let j = 0; j < g; j++) {
      const group = groups[j]!
      // Users join and leave at hour boundaries; refresh only when someone did.
      if (h === 0 || group.users.some((u) => crossed(u, mid - MS_PER_HOUR, mid))) {
        loads[j] = refreshGroup(group, mid)
      }
      const w = loads[j]! * groupShape(group, hourStart, model) * length
      const noisy = w * Math.exp(0.12 * random.normal())
      weights[h * (g + 1) + j] = noisy
      userTotal += noisy
    }
  }
  const scanners = (userTotal * model.scannerShare) / (1 - model.scannerShare) / hours
  for (let h = 0; h < hours; h++) weights[h * (g + 1) + g] = scanners
  const total = userTotal + scanners * hours
  const counts = new Uint32Array(hours)
  let cumulative = 0
  let assigned = 0
  for (let h = 0; h < hours; h++) {
    for (let j = 0; j <= g; j++) cumulative += weights[h * (g + 1) + j]!
    const upTo = total > 0 ? Math.round((cumulative / total) * model.requests) : 0
    counts[h] = upTo - assigned
    assigned = upTo
  }
  return { hours, weights, counts }
}

/** Whether the user joined or left in (after, until]. */
export function crossed(user: UserModel, after: number, until: number): boolean {
  return (
    (user.activeFrom > after && user.activeFrom <= until) ||
    (user.activeTo > after && user.activeTo <= until)
  )
}
