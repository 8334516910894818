import { defineStore } from 'pinia'
import { ref } from 'vue'

export type ViewName =
  | 'overview'
  | 'utilization'
  | 'heatmap'
  | 'performance'
  | 'versions'
  | 'clients'
  | 'status'
  | 'outliers'
  | 'compare'
  | 'endpoint'

export const TABS: ReadonlyArray<{ view: Exclude<ViewName, 'endpoint'>; label: string }> = [
  { view: 'overview', label: 'Endpoints' },
  { view: 'utilization', label: 'Utilization' },
  { view: 'heatmap', label: 'Hour of day' },
  { view: 'performance', label: 'Performance' },
  { view: 'versions', label: 'Versions' },
  { view: 'clients', label: 'Users & IPs' },
  { view: 'status', label: 'Status codes' },
  { view: 'outliers', label: 'Outliers' },
  { view: 'compare', label: 'Compare' },
]

export interface Route {
  view: ViewName
  /** the endpoint of the endpoint page */
  endpointId: number | null
}

/** '#/endpoint/12' → the endpoint page of 12; '#/status' → status codes; else the overview. */
export function parseHash(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').replace(/\?.*$/, '').split('/')
  const [head, id] = parts
  if (head === 'endpoint' && id !== undefined && /^\d+$/.test(id)) {
    return { view: 'endpoint', endpointId: Number(id) }
  }
  const tab = TABS.find((t) => t.view === head)
  return { view: tab?.view ?? 'overview', endpointId: null }
}

export function toHash(route: Route): string {
  return route.view === 'endpoint' ? `#/endpoint/${route.endpointId}` : `#/${route.view}`
}

/** Which view is shown; `useHashRoute` mirrors it in the URL so reloads and back/forward work. */
export const useNavStore = defineStore('nav', () => {
  /** the view on screen */
  const view = ref<ViewName>('overview')
  /** the endpoint of the endpoint page; null on the other views */
  const endpointId = ref<number | null>(null)

  function go(route: Route): void {
    view.value = route.view
    endpointId.value = route.view === 'endpoint' ? route.endpointId : null
  }

  function openEndpoint(id: number): void {
    go({ view: 'endpoint', endpointId: id })
  }

  return { view, endpointId, go, openEndpoint }
})
