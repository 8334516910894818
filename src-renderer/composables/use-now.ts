import { onBeforeUnmount, onMounted, ref, type Ref } from 'vue'

/** A clock for relative times ("3 min ago") that ticks while the component lives. */
export function useNow(intervalMs = 15_000): Ref<number> {
  const now = ref(Date.now())
  let timer: ReturnType<typeof setInterval> | undefined
  onMounted(() => {
    timer = setInterval(() => (now.value = Date.now()), intervalMs)
  })
  onBeforeUnmount(() => clearInterval(timer))
  return now
}
