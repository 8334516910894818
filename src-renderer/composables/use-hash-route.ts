import { onBeforeUnmount, onMounted, watch } from 'vue'
import { parseUrlFilters, useFiltersStore } from '../stores/filters'
import { parseHash, toHash, useNavStore } from '../stores/nav'

/**
 * Keeps the view and the filters (range, UTC, selection) and `location.hash`
 * in step while the calling component lives: a reload or a shared URL shows
 * the same view.
 */
export function useHashRoute(): void {
  const nav = useNavStore()
  const filters = useFiltersStore()
  const fromLocation = (): void => {
    const hash = window.location.hash
    nav.go(parseHash(hash))
    const at = hash.indexOf('?')
    filters.applyUrl(parseUrlFilters(new URLSearchParams(at < 0 ? '' : hash.slice(at + 1))))
  }

  fromLocation()
  const stop = watch(
    () => toHash({ view: nav.view, endpointId: nav.endpointId }) + filters.urlQuery,
    (hash) => {
      if (window.location.hash !== hash) window.location.hash = hash
    },
  )
  onMounted(() => window.addEventListener('hashchange', fromLocation))
  onBeforeUnmount(() => {
    stop()
    window.removeEventListener('hashchange', fromLocation)
  })
}
