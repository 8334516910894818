import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import {
  api,
  toApiError,
  type ApiError,
  type Endpoint,
  type MonitorLevel,
  type OverviewRow,
  type RangeArgs,
  type SourceLevelResult,
} from '../api'
import { latestOnly } from './latest'
import { useSourcesStore } from './sources'

/** What the last level change of an endpoint did, shown next to its control. */
export type LevelOutcome =
  | { state: 'saving'; level: MonitorLevel }
  | { state: 'saved'; level: MonitorLevel; sources?: SourceLevelResult[] }
  | { state: 'failed'; level: MonitorLevel; error: ApiError }

export function endpointName(endpoint: Pick<Endpoint, 'method' | 'route'>): string {
  return `${endpoint.method} ${endpoint.route}`
}

export const useEndpointsStore = defineStore('endpoints', () => {
  /** one overview row per endpoint of the file, for the current range */
  const rows = ref<OverviewRow[]>([])
  /** true once rows were loaded for the open file */
  const loaded = ref(false)
  /** true while the overview is being loaded */
  const loading = ref(false)
  /** why the last load failed; null after a success */
  const error = ref<ApiError | null>(null)
  /** the outcome of the last level change, by endpoint id */
  const levelOutcome = ref<Record<number, LevelOutcome>>({})

  /** rows by endpoint id, for labels and colours in every view */
  const byId = computed(() => new Map(rows.value.map((row) => [row.id, row])))

  /** endpoints busiest first (range hits), then by name */
  const busiestFirst = computed(() =>
    [...rows.value].sort(
      (a, b) => b.range.hits - a.range.hits || endpointName(a).localeCompare(endpointName(b), 'en'),
    ),
  )

  function label(endpointId: number): string {
    const endpoint = byId.value.get(endpointId)
    return endpoint === undefined ? `endpoint #${endpointId}` : endpointName(endpoint)
  }

  const latest = latestOnly()

  async function load(args: RangeArgs): Promise<void> {
    const ticket = latest.take()
    loading.value = true
    try {
      const result = await api.endpoints(args)
      if (latest.isLatest(ticket)) {
        rows.value = result
        loaded.value = true
        error.value = null
      }
    } catch (caught) {
      if (latest.isLatest(ticket)) error.value = toApiError(caught)
    } finally {
      if (latest.isLatest(ticket)) loading.value = false
    }
  }

  /** Forgets the rows of the previous file. */
  function reset(): void {
    latest.take()
    rows.value = []
    loaded.value = false
    loading.value = false
    error.value = null
    levelOutcome.value = {}
  }

  /** Writes a monitor level into the file; the row shows the level the file now has. */
  async function setLevel(endpointId: number, level: MonitorLevel): Promise<void> {
    levelOutcome.value = { ...levelOutcome.value, [endpointId]: { state: 'saving', level } }
    let outcome: LevelOutcome
    try {
      // A copy from a server, or several sources: the change goes to each, which says if it took it.
      const sources = useSourcesStore()
      const change =
        (sources.fromServer || sources.merged) && api.sources !== undefined
          ? await api.sources.setLevel({ endpointId, level })
          : { endpoint: await api.setLevel({ endpointId, level }), sources: undefined }
      const endpoint = change.endpoint
      rows.value = rows.value.map((row) =>
        row.id === endpoint.id ? { ...row, level: endpoint.level } : row,
      )
      outcome = {
        state: 'saved',
        level: endpoint.level,
        ...(change.sources === undefined ? {} : { sources: change.sources }),
      }
    } catch (caught) {
      outcome = { state: 'failed', level, error: toApiError(caught) }
    }
    levelOutcome.value = { ...levelOutcome.value, [endpointId]: outcome }
  }

  return {
    rows,
    loaded,
    loading,
    error,
    levelOutcome,
    byId,
    busiestFirst,
    label,
    load,
    reset,
    setLevel,
  }
})
