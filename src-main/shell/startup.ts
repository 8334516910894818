/** Which file the desktop app opens first, and where its own files live. */
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'

/**
 * The metrics file named on the command line, if any. Electron's argv is
 * `[electron, app, ...args]` in development and `[app, ...args]` when
 * packaged; Chromium switches (`--foo`) are not files.
 */
export function fileArgument(
  argv: readonly string[],
  packaged: boolean,
  cwd: string,
): string | null {
  const args = argv.slice(packaged ? 1 : 2)
  const file = args.find((arg) => !arg.startsWith('-'))
  return file === undefined ? null : resolve(cwd, file)
}

export type StartupChoice =
  | { kind: 'argument'; path: string }
  | { kind: 'last'; path: string }
  | { kind: 'demo'; path: string }

/** The argument, else the last file opened (if it is still there), else the demo database. */
export function startupFile(
  argument: string | null,
  lastOpened: string | undefined,
  userData: string,
): StartupChoice {
  if (argument !== null) return { kind: 'argument', path: argument }
  if (lastOpened !== undefined && existsSync(lastOpened)) return { kind: 'last', path: lastOpened }
  return { kind: 'demo', path: demoPath(userData) }
}

export function demoPath(userData: string): string {
  return join(userData, 'demo.db')
}

/**
 * better_sqlite3.node built for Electron's ABI, kept apart from the Node
 * build in node_modules that the tests and web mode use
 * (`npm run build:native` makes it; `npm start` runs that when needed).
 */
export function electronNativeBinding(appRoot: string, electronVersion: string): string {
  return join(appRoot, 'build', 'native', `electron-${electronVersion}`, 'better_sqlite3.node')
}
