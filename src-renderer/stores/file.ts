import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, toApiError, type ApiError, type FileEvent, type FileInfo } from '../api'
import { latestOnly } from './latest'

/** A running collector writes every 250 ms: views refresh at most this often. */
export const REFRESH_THROTTLE_MS = 1000

export const useFileStore = defineStore('file', () => {
  /** the open metrics file; null until the first answer, or when no file can be read */
  const info = ref<FileInfo | null>(null)
  /** why no file can be shown (NO_FILE, NOT_SQLITE, TOO_NEW...); null when one can */
  const error = ref<ApiError | null>(null)
  /** true while the file's info is being read or another file is being opened */
  const loading = ref(false)
  /** why the last attempt to open another file failed; the current file stays open */
  const openError = ref<ApiError | null>(null)
  /** moves on every change of the file's contents; views reload when it does */
  const revision = ref(0)
  /** a problem with the open file or the connection, shown over the last data read */
  const warning = ref<ApiError | null>(null)
  /** the file was deleted while open; what is shown is what was read before */
  const deleted = ref(false)
  /** when the views last learnt of a change (ms since the epoch) */
  const updatedAt = ref<number | null>(null)

  /** whether the "About this file" dialog is open */
  const aboutOpen = ref(false)

  /** true when views can query the file */
  const ready = computed(() => info.value !== null && error.value === null)

  const latest = latestOnly()
  let pendingRefresh: ReturnType<typeof setTimeout> | null = null

  async function load(): Promise<void> {
    const ticket = latest.take()
    loading.value = true
    try {
      const result = await api.info({})
      if (latest.isLatest(ticket)) {
        info.value = result
        error.value = null
      }
    } catch (caught) {
      if (latest.isLatest(ticket)) error.value = toApiError(caught)
    } finally {
      if (latest.isLatest(ticket)) loading.value = false
    }
  }

  function opened(result: FileInfo): void {
    info.value = result
    error.value = null
    warning.value = null
    openError.value = null
    deleted.value = false
    bump()
  }

  /** Opens another file; on failure the current one stays and `openError` says why. */
  async function open(path: string): Promise<boolean> {
    const ticket = latest.take()
    loading.value = true
    openError.value = null
    try {
      const result = await api.openFile({ path })
      if (latest.isLatest(ticket)) opened(result)
      return true
    } catch (caught) {
      if (latest.isLatest(ticket)) openError.value = toApiError(caught)
      return false
    } finally {
      if (latest.isLatest(ticket)) loading.value = false
    }
  }

  /** The desktop's native open dialog; does nothing in web mode. */
  async function choose(): Promise<void> {
    const ticket = latest.take()
    loading.value = true
    openError.value = null
    try {
      const result = await api.chooseFile()
      if (result !== null && latest.isLatest(ticket)) opened(result)
    } catch (caught) {
      if (latest.isLatest(ticket)) openError.value = toApiError(caught)
    } finally {
      if (latest.isLatest(ticket)) loading.value = false
    }
  }

  function bump(): void {
    revision.value += 1
    updatedAt.value = Date.now()
  }

  /** Coalesces a burst of changes into one refresh (info included) per throttle period. */
  function scheduleRefresh(): void {
    if (pendingRefresh !== null) return
    pendingRefresh = setTimeout(() => {
      pendingRefresh = null
      void load()
      bump()
    }, REFRESH_THROTTLE_MS)
  }

  function handleEvent(event: FileEvent): void {
    if (event.kind !== 'error') warning.value = null
    switch (event.kind) {
      case 'changed':
        scheduleRefresh()
        break
      case 'replaced':
        deleted.value = false
        void load().then(bump)
        break
      case 'deleted':
        deleted.value = true
        break
      case 'opened':
        opened(event.info)
        break
      case 'error':
        // The last data stays on screen; the banner says why it may be stale.
        warning.value = event.error
        break
    }
  }

  return {
    info,
    error,
    loading,
    openError,
    warning,
    revision,
    deleted,
    updatedAt,
    aboutOpen,
    ready,
    load,
    open,
    choose,
    handleEvent,
  }
})
