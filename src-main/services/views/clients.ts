/*
 * Users and client IPs of one endpoint: the busiest ones, their box plots,
 * and their median per version.
 */
import { NO_ID } from 'routemeter/schema'
import type { ClientArgs, ClientBreakdown } from '../../api/contract.js'
import { DEFAULT_CLIENT_LIMIT } from '../../api/validate.js'
import { DurationSummary, MS_PER_DAY } from '../stats.js'
import type { ViewContext } from './context.js'

/** How `clients` names requests without a user or an IP. */
export const NO_CLIENT = '(none)'
/** Most clients listed in `available`. */
const MAX_AVAILABLE = 500

/**
 * Users or IPs of one endpoint. Chosen names must be among the 500 busiest
 * (`available`) to be shown; unknown ones are left out. Whole UTC days come
 * from the per-client rollups where the store has them, the range's ends
 * (and the newest requests, not counted per client yet) from the requests.
 */
export function clients(ctx: ViewContext, args: ClientArgs): ClientBreakdown {
  const { reader } = ctx
  reader.refreshRollups()
  const kind = args.kind
  const nameOf = (id: number | null): string =>
    id === null ? NO_CLIENT : (reader.clientName(kind, id) ?? `#${id}`)

  const scope = ctx.scopeOf([ctx.endpointRow(args.endpointId)], args)
  // An end of the range before the raw rows kept is read as its whole day.
  const rawSince = reader.rawSince()
  const firstDay = (args.from < rawSince ? Math.floor : Math.ceil)(args.from / MS_PER_DAY)
  // Past the newest request, too: the last day's rollups hold nothing later than it.
  const wholeLastDay =
    Math.floor(args.to / MS_PER_DAY) * MS_PER_DAY < rawSince ||
    args.to > reader.newestRequest(scope.endpointIds)
  const endDay = (wholeLastDay ? Math.ceil : Math.floor)(args.to / MS_PER_DAY)
  const rollupDays: Array<[number, number]> =
    reader.hasClientRollups(kind) && firstDay < endDay ? [[firstDay, endDay]] : []
  const rawParts: Array<[number, number]> = []
  if (rollupDays.length === 0) rawParts.push([args.from, args.to])
  else {
    if (args.from < firstDay * MS_PER_DAY) rawParts.push([args.from, firstDay * MS_PER_DAY])
    if (endDay * MS_PER_DAY < args.to) rawParts.push([endDay * MS_PER_DAY, args.to])
  }

  // First the requests per client (NO_ID: none), to pick the ones to show.
  const totalOf = new Map<number, number>()
  for (const [from, to] of rollupDays) {
    for (const [client, n] of reader.clientTotals(kind, scope, from, to)) {
      totalOf.set(client, (totalOf.get(client) ?? 0) + n)
    }
  }
  // Requests are read once: (client, version, duration) kept for the second step.
  const rawClients: number[] = []
  const rawVersions: number[] = []
  const rawDurations: number[] = []
  const rawWeights: number[] = []
  const keep = (rows: Iterable<[number, number, number, number?]>): void => {
    for (const [client, versionId, duration, weight = 1] of rows) {
      rawClients.push(client)
      rawVersions.push(versionId)
      rawDurations.push(duration)
      rawWeights.push(weight)
      totalOf.set(client, (totalOf.get(client) ?? 0) + weight)
    }
  }
  const column = kind === 'user' ? 'user_group_id' : 'client_ip_id'
  for (const [from, to] of rawParts) {
    keep(
      reader.requests<[number, number, number, number]>(
        [column, 'version_id', 'duration_us', 'weight'],
        scope,
        from,
        to,
      ),
    )
  }
  // Not weighted: the per-client rollups already count the requests sampled away beside them.
  for (const [from, to] of rollupDays) {
    keep(reader.uncountedClientRequests(kind, scope, from * MS_PER_DAY, to * MS_PER_DAY))
  }
  const asClient = (id: number): number | null => (id === NO_ID ? null : id)
  const busiest = [...totalOf.entries()]
    .map(([id, n]) => ({ id: asClient(id), count: n }))
    .sort((a, b) => b.count - a.count || (a.id ?? -1) - (b.id ?? -1))
    .slice(0, MAX_AVAILABLE)
  const available = busiest.map((row) => ({ name: nameOf(row.id), count: row.count }))

  // The clients to show, as ids (null: requests without one), busiest first.
  let shown: Array<number | null>
  if (args.names === undefined) {
    shown = busiest.slice(0, args.limit ?? DEFAULT_CLIENT_LIMIT).map((row) => row.id)
  } else {
    const wanted = new Set<number | null>()
    for (const name of args.names) {
      if (name === NO_CLIENT) wanted.add(null)
      const id = reader.clientId(kind, name)
      if (id !== undefined) wanted.add(id)
    }
    const rank = new Map(busiest.map((row, i) => [row.id, i]))
    shown = [...wanted].filter((id) => rank.has(id)).sort((a, b) => rank.get(a)! - rank.get(b)!)
  }

  // Then the durations of the shown clients only, per version.
  const perClient = new Map<number | null, Map<number, DurationSummary>>(
    shown.map((id) => [id, new Map()]),
  )
  const summaryOf = (client: number | null, versionId: number): DurationSummary => {
    const perVersion = perClient.get(client)!
    let summary = perVersion.get(versionId)
    if (summary === undefined) perVersion.set(versionId, (summary = new DurationSummary()))
    return summary
  }
  const shownIds = shown.map((id) => id ?? NO_ID)
  for (const [from, to] of rollupDays) {
    for (const [client, versionId, n, sum, min, max, blob] of reader.clientRollups(
      kind,
      scope,
      from,
      to,
      shownIds,
    )) {
      summaryOf(asClient(client), versionId).addRollup(n, 0, 0, sum, min, max, blob)
    }
  }
  const wantedIds = new Set(shownIds)
  for (let i = 0; i < rawClients.length; i++) {
    const client = rawClients[i]!
    if (wantedIds.has(client))
      summaryOf(asClient(client), rawVersions[i]!).addRequest(rawDurations[i]!, 0, rawWeights[i])
  }

  const versions = ctx.versionList(shown.flatMap((id) => [...perClient.get(id)!.keys()]))
  return {
    available,
    clients: shown.flatMap((id) => {
      const all = new DurationSummary()
      for (const summary of perClient.get(id)!.values()) all.add(summary)
      const stats = all.box()
      return stats === null ? [] : [{ name: nameOf(id), stats }]
    }),
    versions,
    medianUs: shown.map((id) =>
      versions.map((v) => perClient.get(id)!.get(v.id)?.medianAndP95().medianUs ?? null),
    ),
  }
}
