import { onBeforeUnmount, onMounted, watch } from 'vue'
import { parseHash, toHash, useNavStore } from '../stores/nav'

/** Keeps the nav store and `location.hash` in step while the calling component lives. */
export function useHashRoute(): void {
  const nav = useNavStore()
  const fromLocation = (): void => nav.go(parseHash(window.location.hash))

  nav.go(parseHash(window.location.hash))
  const stop = watch(
    () => toHash({ view: nav.view, endpointId: nav.endpointId }),
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
