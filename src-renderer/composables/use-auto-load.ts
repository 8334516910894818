import { computed, watch } from 'vue'
import { useFileStore } from '../stores/file'

/**
 * Calls `load` now, whenever `args` changes value, and on every change of the
 * file (live refresh). `args` returning null means "nothing to load yet".
 */
export function useAutoLoad(args: () => unknown, load: () => unknown): void {
  const file = useFileStore()
  const key = computed(() => {
    if (!file.ready) return null
    const value = args()
    return value === null ? null : JSON.stringify(value)
  })
  watch(
    [key, () => file.revision],
    ([current]) => {
      if (current !== null) void load()
    },
    { immediate: true },
  )
}
