import { defineStore } from 'pinia'
import { ref } from 'vue'

export type Period = 'today' | 'week' | 'range'
export type Metric = 'hits' | 'errors4xx' | 'errors5xx' | 'medianUs' | 'p95Us'
export type SortKey = 'name' | 'level' | 'lastRequested' | 'outliers' | `${Period}.${Metric}`

/** How the endpoints table is searched, sorted and paged; kept while switching views. */
export const useOverviewStore = defineStore('overview', () => {
  /** the column the table is sorted by */
  const sortKey = ref<SortKey>('range.hits')
  /** true for largest (or latest, or Z) first */
  const descending = ref(true)
  /** text an endpoint's method and route must contain */
  const search = ref('')
  /** page shown, from 0 */
  const page = ref(0)
  /** rows per page */
  const pageSize = ref(50)

  function sortBy(key: SortKey): void {
    if (sortKey.value === key) descending.value = !descending.value
    else {
      sortKey.value = key
      descending.value = key !== 'name'
    }
    page.value = 0
  }

  /** A header cell's aria-sort: how the table is sorted by one of its keys, if any. */
  function ariaSort(...keys: SortKey[]): 'ascending' | 'descending' | 'none' {
    if (!keys.includes(sortKey.value)) return 'none'
    return descending.value ? 'descending' : 'ascending'
  }

  return { sortKey, descending, search, page, pageSize, sortBy, ariaSort }
})
