import { defineStore } from 'pinia'
import { computed, ref, watch } from 'vue'
import type { FileInfo, RangeArgs } from '../api'
import { DAY, dayKey, parseDayKey, startOfDay, viewerOffset } from '../lib/time'
import { useFileStore } from './file'

export type RangePreset = 'today' | '7d' | '30d' | '90d' | 'all' | 'custom'

export const RANGE_PRESETS: ReadonlyArray<{ id: RangePreset; label: string; days?: number }> = [
  { id: 'today', label: 'Today', days: 1 },
  { id: '7d', label: '7 days', days: 7 },
  { id: '30d', label: '30 days', days: 30 },
  { id: '90d', label: '90 days', days: 90 },
  { id: 'all', label: 'All' },
  { id: 'custom', label: 'Custom' },
]

export interface XZoom {
  min: number
  max: number
}

/**
 * The range a file opens with: all of it when it ended more than 30 days
 * ago (a copy from a server), the last 7 days when it is younger than that,
 * else the last 30 days.
 */
export function defaultPreset(info: FileInfo | null, now: number): RangePreset {
  if (info?.lastRequest == null || info.firstRequest == null) return '7d'
  if (info.lastRequest < now - 30 * DAY) return 'all'
  if (info.firstRequest >= now - 7 * DAY) return '7d'
  return '30d'
}

/**
 * What the URL keeps of the filters, after the view (`#/performance?range=7d&utc=1&sel=3,5`):
 * a preset, or a custom range as first..last day; UTC; the endpoints selected.
 * Only what differs from how the file opens is written.
 */
export interface UrlFilters {
  preset?: RangePreset
  customFrom?: string
  customTo?: string
  utc?: boolean
  selected?: number[]
}

const DAY_KEY = /^\d{4}-\d{2}-\d{2}$/

/** The filters of a URL's query; what does not parse is left out. */
export function parseUrlFilters(query: URLSearchParams): UrlFilters {
  const state: UrlFilters = {}
  const range = query.get('range')
  if (range !== null) {
    const [from, to] = range.split('..')
    if (from !== undefined && to !== undefined && DAY_KEY.test(from) && DAY_KEY.test(to)) {
      Object.assign(state, { preset: 'custom', customFrom: from, customTo: to })
    } else if (RANGE_PRESETS.some((p) => p.id === range && p.id !== 'custom')) {
      state.preset = range as RangePreset
    }
  }
  if (query.get('utc') === '1') state.utc = true
  const selected = (query.get('sel') ?? '')
    .split(',')
    .filter((part) => /^\d+$/.test(part))
    .map(Number)
  if (selected.length > 0) state.selected = selected
  return state
}

export const useFiltersStore = defineStore('filters', () => {
  /** the date range's preset; the relative ones end with today */
  const preset = ref<RangePreset>('30d')
  /** first day of a custom range, 'YYYY-MM-DD' */
  const customFrom = ref('')
  /** last day of a custom range (included), 'YYYY-MM-DD' */
  const customTo = ref('')
  /** show and bucket times in UTC instead of the viewer's local time */
  const utc = ref(false)
  /** the clock relative ranges end at; moves with file changes and every minute */
  const now = ref(Date.now())
  /** endpoints picked in the overview to compare; empty means all endpoints */
  const selectedIds = ref<number[]>([])
  /** the endpoint that the versions and users views show; null until one is picked */
  const focusId = ref<number | null>(null)
  /** the endpoint of the hour-of-day heatmap; null = all (or the selection) */
  const heatmapId = ref<number | null>(null)
  /** the endpoint of the status codes view; null = all (or the selection) */
  const statusId = ref<number | null>(null)
  /** x-axis zoom of the time charts by chart id, kept across live refreshes */
  const zoom = ref<Record<string, XZoom>>({})
  /** the nodes whose requests are shown (a dataset of several nodes); empty means all */
  const nodes = ref<string[]>([])
  /** filters a URL gave before the file opened: they win over the file's defaults once */
  let fromUrl: UrlFilters | null = null

  const file = useFileStore()

  const utcOffsetMinutes = computed(() => viewerOffset(utc.value, now.value))

  /** [from, to) in ms, whole days in the viewer's offset */
  const range = computed<{ from: number; to: number }>(() => {
    const offset = utcOffsetMinutes.value
    const tomorrow = startOfDay(now.value, offset) + DAY
    const info = file.info
    if (preset.value === 'all') {
      const first = info?.firstRequest ?? now.value
      const last = info?.lastRequest ?? now.value
      return { from: startOfDay(first, offset), to: startOfDay(last, offset) + DAY }
    }
    if (preset.value === 'custom') {
      const from = parseDayKey(customFrom.value, offset)
      const to = parseDayKey(customTo.value, offset) + DAY
      if (Number.isFinite(from) && Number.isFinite(to) && from < to) return { from, to }
    }
    const days = RANGE_PRESETS.find((p) => p.id === preset.value)?.days ?? 30
    return { from: tomorrow - days * DAY, to: tomorrow }
  })

  /** the range for queries over every endpoint (the overview) */
  const allEndpointsArgs = computed<RangeArgs>(() => ({
    from: range.value.from,
    to: range.value.to,
    utcOffsetMinutes: utcOffsetMinutes.value,
    ...(nodes.value.length === 0 ? {} : { nodes: [...nodes.value].sort() }),
  }))

  /** the range for queries restricted to the selection, if any */
  const rangeArgs = computed<RangeArgs>(() =>
    selectedIds.value.length === 0
      ? allEndpointsArgs.value
      : { ...allEndpointsArgs.value, endpointIds: [...selectedIds.value].sort((a, b) => a - b) },
  )

  function setPreset(next: RangePreset): void {
    if (next === 'custom' && (customFrom.value === '' || customTo.value === '')) {
      customFrom.value = dayKey(range.value.from, utcOffsetMinutes.value)
      customTo.value = dayKey(range.value.to - 1, utcOffsetMinutes.value)
    }
    preset.value = next
  }

  function tick(): void {
    now.value = Date.now()
  }

  function toggleSelected(endpointId: number): void {
    const at = selectedIds.value.indexOf(endpointId)
    if (at === -1) selectedIds.value = [...selectedIds.value, endpointId]
    else selectedIds.value = selectedIds.value.filter((id) => id !== endpointId)
  }

  function setSelected(ids: number[]): void {
    selectedIds.value = [...new Set(ids)]
  }

  function toggleNode(node: string): void {
    nodes.value = nodes.value.includes(node)
      ? nodes.value.filter((name) => name !== node)
      : [...nodes.value, node]
  }

  function setZoom(chartId: string, value: XZoom | null): void {
    const next = { ...zoom.value }
    if (value === null) delete next[chartId]
    else next[chartId] = value
    zoom.value = next
  }

  // A zoom belongs to the range it was made in.
  watch(range, (next, previous) => {
    if (next.from !== previous.from || next.to !== previous.to) zoom.value = {}
  })

  // Another file: its endpoint ids mean other endpoints.
  watch(
    () => file.info?.path,
    (path, previous) => {
      if (path === previous) return
      selectedIds.value = []
      focusId.value = null
      heatmapId.value = null
      statusId.value = null
      zoom.value = {}
      nodes.value = []
      tick()
      preset.value = defaultPreset(file.info, now.value)
      // The first file of a page opened from a shared URL: the URL's filters.
      if (previous === undefined && fromUrl !== null) applyUrl(fromUrl)
      fromUrl = null
    },
  )

  /** Filters from a URL: applied now, and again over the defaults when the first file opens. */
  function applyUrl(state: UrlFilters): void {
    if (file.info === null) fromUrl = state
    if (state.preset !== undefined) preset.value = state.preset
    if (state.customFrom !== undefined) customFrom.value = state.customFrom
    if (state.customTo !== undefined) customTo.value = state.customTo
    utc.value = state.utc ?? false
    selectedIds.value = state.selected ?? []
  }

  /** The URL query of the filters, only what differs from how the file opens ('' for none). */
  const urlQuery = computed(() => {
    const query = new URLSearchParams()
    if (preset.value === 'custom') query.set('range', `${customFrom.value}..${customTo.value}`)
    else if (preset.value !== defaultPreset(file.info, now.value)) query.set('range', preset.value)
    if (utc.value) query.set('utc', '1')
    if (selectedIds.value.length > 0)
      query.set('sel', [...selectedIds.value].sort((a, b) => a - b).join(','))
    const text = query.toString().replaceAll('%2C', ',')
    return text === '' ? '' : `?${text}`
  })
  watch(
    () => file.revision,
    () => tick(),
  )

  return {
    preset,
    customFrom,
    customTo,
    utc,
    now,
    selectedIds,
    focusId,
    heatmapId,
    statusId,
    zoom,
    nodes,
    utcOffsetMinutes,
    range,
    allEndpointsArgs,
    rangeArgs,
    setPreset,
    applyUrl,
    urlQuery,
    tick,
    toggleSelected,
    setSelected,
    toggleNode,
    setZoom,
  }
})
