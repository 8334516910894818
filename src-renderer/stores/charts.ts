/**
 * The stores behind the chart views. Each holds the last answer of one API
 * method for the arguments it was last asked with; a view reloads it when its
 * arguments or the file change, keeping the previous answer on screen meanwhile.
 */
import { defineStore } from 'pinia'
import { ref } from 'vue'
import {
  api,
  toApiError,
  type ApiError,
  type ClientArgs,
  type ClientBreakdown,
  type ClientKind,
  type EndpointArgs,
  type EndpointBox,
  type ErrorRequest,
  type HeatmapArgs,
  type HourHeatmap,
  type RangeArgs,
  type StatusArgs,
  type StatusCodes,
  type Utilization,
  type VersionEvolution,
  type VersionUtilization,
} from '../api'
import { latestOnly } from './latest'

export const useUtilizationStore = defineStore('utilization', () => {
  /** requests per endpoint per day */
  const data = ref<Utilization | null>(null)
  /** true while a load is under way */
  const loading = ref(false)
  /** why the last load failed; null after a success */
  const error = ref<ApiError | null>(null)
  const latest = latestOnly()

  async function load(args: RangeArgs): Promise<void> {
    const ticket = latest.take()
    loading.value = true
    try {
      const result = await api.utilization(args)
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
})

export const useHeatmapStore = defineStore('hourHeatmap', () => {
  /** requests by hour of day and day */
  const data = ref<HourHeatmap | null>(null)
  /** true while a load is under way */
  const loading = ref(false)
  /** why the last load failed; null after a success */
  const error = ref<ApiError | null>(null)
  const latest = latestOnly()

  async function load(args: HeatmapArgs): Promise<void> {
    const ticket = latest.take()
    loading.value = true
    try {
      const result = await api.hourHeatmap(args)
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
})

export const usePerformanceStore = defineStore('performance', () => {
  /** one response-time box per endpoint with requests */
  const data = ref<EndpointBox[] | null>(null)
  /** true while a load is under way */
  const loading = ref(false)
  /** why the last load failed; null after a success */
  const error = ref<ApiError | null>(null)
  const latest = latestOnly()

  async function load(args: RangeArgs): Promise<void> {
    const ticket = latest.take()
    loading.value = true
    try {
      const result = await api.performance(args)
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
})

export const useVersionEvolutionStore = defineStore('versionEvolution', () => {
  /** one response-time box per version of the focused endpoint */
  const data = ref<VersionEvolution | null>(null)
  /** true while a load is under way */
  const loading = ref(false)
  /** why the last load failed; null after a success */
  const error = ref<ApiError | null>(null)
  const latest = latestOnly()

  async function load(args: EndpointArgs): Promise<void> {
    const ticket = latest.take()
    loading.value = true
    try {
      const result = await api.versionEvolution(args)
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
})

export const useVersionUtilizationStore = defineStore('versionUtilization', () => {
  /** requests per version and endpoint */
  const data = ref<VersionUtilization | null>(null)
  /** true while a load is under way */
  const loading = ref(false)
  /** why the last load failed; null after a success */
  const error = ref<ApiError | null>(null)
  const latest = latestOnly()

  async function load(args: RangeArgs): Promise<void> {
    const ticket = latest.take()
    loading.value = true
    try {
      const result = await api.versionUtilization(args)
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
})

export const useClientsStore = defineStore('clients', () => {
  /** users or IPs of the focused endpoint: boxes and medians per version */
  const data = ref<ClientBreakdown | null>(null)
  /** true while a load is under way */
  const loading = ref(false)
  /** why the last load failed; null after a success */
  const error = ref<ApiError | null>(null)
  /** whether clients are users (groupBy) or client IPs */
  const kind = ref<ClientKind>('user')
  /** the clients picked by hand; null shows the busiest ten */
  const chosen = ref<string[] | null>(null)
  const latest = latestOnly()

  function setKind(next: ClientKind): void {
    if (next === kind.value) return
    kind.value = next
    chosen.value = null
  }

  async function load(args: ClientArgs): Promise<void> {
    const ticket = latest.take()
    loading.value = true
    try {
      const result = await api.clients(args)
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
  return { data, loading, error, kind, chosen, setKind, load }
})

export const useStatusStore = defineStore('statusCodes', () => {
  /** requests per status code per day */
  const codes = ref<StatusCodes | null>(null)
  /** the latest requests answered 4xx/5xx or aborted, newest first */
  const errors = ref<ErrorRequest[] | null>(null)
  /** true while a load is under way */
  const loading = ref(false)
  /** why the last load failed; null after a success */
  const error = ref<ApiError | null>(null)
  const latest = latestOnly()

  async function load(args: StatusArgs, errorLimit = 50): Promise<void> {
    const ticket = latest.take()
    loading.value = true
    try {
      const [codesResult, errorsResult] = await Promise.all([
        api.statusCodes(args),
        api.latestErrors({ ...args, limit: errorLimit }),
      ])
      if (latest.isLatest(ticket)) {
        codes.value = codesResult
        errors.value = errorsResult
        error.value = null
      }
    } catch (caught) {
      if (latest.isLatest(ticket)) error.value = toApiError(caught)
    } finally {
      if (latest.isLatest(ticket)) loading.value = false
    }
  }
  return { codes, errors, loading, error, load }
})
