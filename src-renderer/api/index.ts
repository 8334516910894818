import { createHttpBridge } from './http'
import type { DashboardBridge } from './types'

/**
 * The one way the renderer talks to the main process: the desktop preload's
 * bridge when there is one, else HTTP to the web-mode server. Stores import
 * `api` from here and never touch `window`.
 */
export let api: DashboardBridge = window.routemeter ?? createHttpBridge()

/** Swaps the transport (tests run the real stores against a fake). */
export function setTransport(bridge: DashboardBridge): void {
  api = bridge
}

export { toApiError, errorTitle } from './errors'
export type * from './types'
