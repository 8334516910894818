import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

// CommonJS has no module URL: scripts/build.mjs rewrites this line in the CommonJS build.
// eslint-disable-next-line @typescript-eslint/ban-ts-comment
// @ts-ignore TS1343 in the CommonJS build only
const here: string = import.meta.url

/**
 * Where the entry module of one of the collector's threads is (`module`: its
 * path in the package's source folder, without extension), and, when the
 * collector runs from its TypeScript sources (its own tests), the TypeScript
 * loader the thread must register first. Throws when no such loader can be found.
 */
export function threadEntry(module: string): { entry: string; tsx: string | undefined } {
  const typescript = here.endsWith('.ts')
  const entry = new URL(`../${module}.${typescript ? 'ts' : 'js'}`, here).href
  if (!typescript) return { entry, tsx: undefined }
  // tsx's CommonJS build of its API registers its hooks from the wrong folder: take the ESM one.
  const api = createRequire(here)
    .resolve('tsx/esm/api')
    .replace(/\.cjs$/, '.mjs')
  if (!existsSync(api)) throw new Error(`no ESM build of tsx's API at ${api}`)
  return { entry, tsx: pathToFileURL(api).href }
}
