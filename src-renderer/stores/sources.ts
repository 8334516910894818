/**
 * Servers and datasets: the servers the user added, the download under way
 * (polled while it runs, for the progress bar), and what the dataset on
 * screen is made of. Talks to `api.sources`; where the transport has none
 * (a web server started without it) `available` stays false and the UI
 * offers nothing of this.
 */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import {
  api,
  toApiError,
  type ApiError,
  type FileInfo,
  type ServerEntry,
  type SourceRef,
  type SourcesApi,
  type SourcesState,
} from '../api'
import { useFileStore } from './file'

/** How often the progress of a download is asked for. */
export const PROGRESS_POLL_MS = 200

export const useSourcesStore = defineStore('sources', () => {
  /** the last state the main process reported; null before the first answer */
  const state = ref<SourcesState | null>(null)
  /** the dialog of servers and files is open */
  const dialogOpen = ref(false)
  /** an action (add, pull, open, refresh) is under way */
  const busy = ref(false)
  /** why the last action failed; null after a success */
  const error = ref<ApiError | null>(null)
  /** the sources API answered: this transport has servers and datasets */
  const available = ref(false)

  const file = useFileStore()
  let poll: ReturnType<typeof setInterval> | null = null

  /** the dataset on screen came from at least one server */
  const fromServer = computed(
    () => state.value?.dataset?.some((source) => source.kind === 'server') ?? false,
  )
  /** the dataset on screen is several sources merged */
  const merged = computed(() => (state.value?.dataset?.length ?? 0) > 1)

  function sources(): SourcesApi {
    if (api.sources === undefined) {
      throw { code: 'INTERNAL', message: 'This app has no servers or datasets.' } as ApiError
    }
    return api.sources
  }

  async function load(): Promise<void> {
    try {
      state.value = await sources().state({})
      available.value = true
    } catch {
      available.value = false
    }
    // Keep asking while a download runs, for the progress bar.
    if (state.value?.pull != null && poll === null) {
      poll = setInterval(() => void load(), PROGRESS_POLL_MS)
    } else if (state.value?.pull == null && poll !== null) {
      clearInterval(poll)
      poll = null
    }
  }

  /** Runs an action; while it runs the state is polled so the progress bar moves. */
  async function run<T>(action: () => Promise<T>): Promise<T | null> {
    busy.value = true
    error.value = null
    const watching = setInterval(() => void load(), PROGRESS_POLL_MS)
    try {
      return await action()
    } catch (caught) {
      error.value = toApiError(caught)
      return null
    } finally {
      clearInterval(watching)
      busy.value = false
      await load()
    }
  }

  function opened(info: FileInfo | null): boolean {
    if (info === null) return false
    file.handleEvent({ kind: 'opened', info })
    dialogOpen.value = false
    return true
  }

  async function addServer(url: string, token: string): Promise<ServerEntry | null> {
    return run(() => sources().addServer({ url, token }))
  }

  async function removeServer(serverId: string): Promise<void> {
    await run(() => sources().removeServer({ serverId }))
  }

  /** Downloads a server's metrics and shows them. */
  async function pull(serverId: string): Promise<boolean> {
    return opened(await run(() => sources().pull({ serverId })))
  }

  async function cancel(): Promise<void> {
    try {
      await sources().cancelPull({})
    } catch (caught) {
      error.value = toApiError(caught)
    }
  }

  /** Pulls what is new on the dataset's servers. */
  async function refresh(): Promise<boolean> {
    const info = await run(() => sources().refresh({}))
    if (info === null) return false
    file.handleEvent({ kind: 'replaced' })
    return true
  }

  /** Opens several files and servers as one dataset. */
  async function open(refs: SourceRef[]): Promise<boolean> {
    return opened(await run(() => sources().open({ sources: refs })))
  }

  function dismissError(): void {
    error.value = null
  }

  return {
    state,
    dialogOpen,
    busy,
    error,
    available,
    fromServer,
    merged,
    load,
    addServer,
    removeServer,
    pull,
    cancel,
    refresh,
    open,
    dismissError,
  }
})
