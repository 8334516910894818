/**
 * The stores behind the chart views. Each holds the last answer of one API
 * method for the arguments it was last asked with; a view reloads it when its
 * arguments or the file change, keeping the previous answer on screen meanwhile.
 */
import { defineStore } from 'pinia'
import { computed, ref, shallowRef, type Ref, type ShallowRef } from 'vue'
import {
  api,
  toApiError,
  type ApiError,
  type ClientArgs,
  type ClientBreakdown,
  type ClientKind,
  type CompareArgs,
  type ReleaseComparison,
  type EndpointArgs,
  type VersionEvolutionArgs,
  type EndpointBox,
  type ErrorRequest,
  type HeatmapArgs,
  type HourHeatmap,
  type OutlierArgs,
  type OutlierDetail,
  type OutlierPage,
  type OutlierTimeline,
  type RangeArgs,
  type StatusArgs,
  type StatusCodes,
  type Utilization,
  type VersionEvolution,
  type VersionUtilization,
} from '../api'
import { latestOnly } from './latest'

/** The state every chart store keeps for one API answer. */
interface Loadable<Result, Args> {
  /** the last answer; null until the first one arrives */
  data: ShallowRef<Result | null>
  /** true while a load is under way */
  loading: Ref<boolean>
  /** why the last load failed; null after a success */
  error: Ref<ApiError | null>
  /** asks again; an older answer arriving after a newer one is dropped */
  load: (args: Args) => Promise<void>
}

/** The one way a chart store loads: latest answer wins, errors kept as data, loading cleared in finally. */
export function loadable<Result, Args>(
  fetch: (args: Args) => Promise<Result>,
): Loadable<Result, Args> {
  const data = shallowRef<Result | null>(null)
  const loading = ref(false)
  const error = ref<ApiError | null>(null)
  const latest = latestOnly()

  async function load(args: Args): Promise<void> {
    const ticket = latest.take()
    loading.value = true
    try {
      const result = await fetch(args)
      if (latest.isLatest(ticket)) {
        data.value = result
        error.value = null
      }
    } catch (caught) {
      if (latest.isLatest(ticket)) error.value = toApiError(caught)
    } finally {
      if (latest.isLatest(ticket)) loading.value = false
    }
  }
  return { data, loading, error, load }
}

/** requests per endpoint per day */
export const useUtilizationStore = defineStore('utilization', () =>
  loadable<Utilization, RangeArgs>((args) => api.utilization(args)),
)

/** requests by hour of day and day */
export const useHeatmapStore = defineStore('hourHeatmap', () =>
  loadable<HourHeatmap, HeatmapArgs>((args) => api.hourHeatmap(args)),
)

/** one response-time box per endpoint with requests */
export const usePerformanceStore = defineStore('performance', () =>
  loadable<EndpointBox[], RangeArgs>((args) => api.performance(args)),
)

/** one response-time box per version of the focused endpoint */
export const useVersionEvolutionStore = defineStore('versionEvolution', () =>
  loadable<VersionEvolution, VersionEvolutionArgs>((args) => api.versionEvolution(args)),
)

/** requests per version and endpoint */
export const useVersionUtilizationStore = defineStore('versionUtilization', () =>
  loadable<VersionUtilization, RangeArgs>((args) => api.versionUtilization(args)),
)

/** users or IPs of the focused endpoint: boxes and medians per version */
export const useClientsStore = defineStore('clients', () => {
  const { data, loading, error, load } = loadable<ClientBreakdown, ClientArgs>((args) =>
    api.clients(args),
  )
  /** whether clients are users (groupBy) or client IPs */
  const kind = ref<ClientKind>('user')
  /** the clients picked by hand; null shows the busiest ten */
  const chosen = ref<string[] | null>(null)

  function setKind(next: ClientKind): void {
    if (next === kind.value) return
    kind.value = next
    chosen.value = null
  }
  return { data, loading, error, kind, chosen, setKind, load }
})

/** requests per status code per day, and the latest errors */
export const useStatusStore = defineStore('statusCodes', () => {
  const {
    data,
    loading,
    error,
    load: loadBoth,
  } = loadable<
    { codes: StatusCodes; errors: ErrorRequest[] },
    { args: StatusArgs; errorLimit: number }
  >(async ({ args, errorLimit }) => {
    const [codes, errors] = await Promise.all([
      api.statusCodes(args),
      api.latestErrors({ ...args, limit: errorLimit }),
    ])
    return { codes, errors }
  })
  /** requests per status code per day */
  const codes = computed(() => data.value?.codes ?? null)
  /** the latest requests answered 4xx/5xx or aborted, newest first */
  const errors = computed(() => data.value?.errors ?? null)

  function load(args: StatusArgs, errorLimit = 50): Promise<void> {
    return loadBoth({ args, errorLimit })
  }
  return { codes, errors, loading, error, load }
})

/** outliers (level 2): a page of the list, newest first */
export const useOutlierListStore = defineStore('outliers', () => {
  const { data, loading, error, load } = loadable<OutlierPage, OutlierArgs>((args) =>
    api.outliers(args),
  )
  /** outliers skipped (the page shown) */
  const offset = ref(0)
  /** the outlier whose detail is open; null: none */
  const openId = ref<number | null>(null)
  return { data, loading, error, load, offset, openId }
})

/** an endpoint's durations with its outliers marked */
export const useOutlierTimelineStore = defineStore('outlierTimeline', () =>
  loadable<OutlierTimeline, EndpointArgs>((args) => api.outlierTimeline(args)),
)

/** one outlier with its context */
export const useOutlierDetailStore = defineStore('outlierDetail', () =>
  loadable<OutlierDetail, { id: number }>((args) => api.outlier(args)),
)

/** what a release changed per endpoint, and the sides compared */
export const useCompareStore = defineStore('compare', () =>
  loadable<ReleaseComparison, CompareArgs>((args) => api.compare(args)),
)
