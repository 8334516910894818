/*
 * "About this file": its size, the retention policy in force, from when each
 * kind of data is kept, and the space each table takes.
 */
import { KEPT_SINCE_KEYS, parsePolicy, POLICY_KEY } from 'routemeter/schema'
import type { AboutFile } from '../../api/contract.js'
import type { ViewContext } from './context.js'

export function aboutFile(ctx: ViewContext): AboutFile {
  const { reader } = ctx
  const meta = reader.meta()
  const since = (key: string): number | null => {
    const value = Number(meta.get(key))
    return Number.isFinite(value) && value > 0 ? value : null
  }
  const policy = parsePolicy(meta.get(POLICY_KEY)) ?? null
  return {
    path: reader.path,
    sizeBytes: reader.size(),
    ...reader.storage(),
    policy,
    keptSince: {
      requests: since(KEPT_SINCE_KEYS.requests),
      outliers: since(KEPT_SINCE_KEYS.outliers),
      rollups: since(KEPT_SINCE_KEYS.rollups),
    },
  }
}
