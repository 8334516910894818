import { computed, watch, type WritableComputedRef } from 'vue'
import { useEndpointsStore } from '../stores/endpoints'
import { useFiltersStore } from '../stores/filters'

/**
 * The endpoint of the single-endpoint views. Until the user picks one it is
 * the first compared endpoint, else the busiest; once set it stays put while
 * live refreshes reorder the busiest.
 */
export function useFocusEndpoint(): WritableComputedRef<number | null> {
  const filters = useFiltersStore()
  const endpoints = useEndpointsStore()
  watch(
    () => [endpoints.loaded, filters.focusId, filters.selectedIds] as const,
    () => {
      if (!endpoints.loaded) return
      if (filters.focusId !== null && endpoints.byId.has(filters.focusId)) return
      filters.focusId = filters.selectedIds[0] ?? endpoints.busiestFirst[0]?.id ?? null
    },
    { immediate: true },
  )
  return computed({
    get: () => filters.focusId,
    set: (value) => {
      filters.focusId = value
    },
  })
}
