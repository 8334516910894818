import type { DashboardBridge } from './api/types'

declare global {
  interface Window {
    /** Exposed by the desktop preload; absent in a browser (web mode). */
    routemeter?: DashboardBridge
  }
}
