/** Why out/ must be built again, or undefined when it is up to date. */
export function staleReason(): string | undefined
/** Runs electron-vite build; throws if it fails. */
export function build(options?: { quiet?: boolean }): void
/** Builds unless out/ is up to date; returns whether it built. */
export function ensureBuilt(options?: { quiet?: boolean }): boolean
