import { onBeforeUnmount, onMounted } from 'vue'
import { api } from '../api'
import { useFileStore } from '../stores/file'

/** Feeds the file watcher's events to the file store while the calling component lives. */
export function useFileEvents(): void {
  const file = useFileStore()
  let unsubscribe: (() => void) | null = null
  onMounted(() => {
    unsubscribe = api.onFileEvent((event) => file.handleEvent(event))
  })
  onBeforeUnmount(() => {
    unsubscribe?.()
    unsubscribe = null
  })
}
