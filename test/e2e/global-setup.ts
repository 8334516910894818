/**
 * Builds the app once for the whole end-to-end run (not per test), and only
 * when out/ is older than the sources: `npm test` has just built it.
 */
import { ensureBuilt, staleReason } from '../../scripts/build.mjs'

export default function setup(): void {
  const reason = staleReason()
  if (reason === undefined) return
  console.log(`e2e: building the app (${reason})`)
  ensureBuilt({ quiet: true })
}
