/**
 * npm runs scripts from the package folder: a relative metrics file path on
 * `npm start -- ../metrics.db` means the folder the user typed it in (INIT_CWD).
 */
import { isAbsolute, resolve } from 'node:path'

/** Options of web mode that take a value (not a file). */
const WITH_VALUE = new Set(['--port', '--host'])

export function resolveFileArgs(args, cwd = process.env.INIT_CWD ?? process.cwd()) {
  return args.map((arg, i) => {
    if (arg.startsWith('-') || WITH_VALUE.has(args[i - 1] ?? '')) return arg
    return isAbsolute(arg) ? arg : resolve(cwd, arg)
  })
}

/** The arguments that Electron understands: the file, not web mode's --port/--host. */
export function electronArgs(args) {
  return args.filter(
    (arg, i) =>
      !WITH_VALUE.has(arg) &&
      !WITH_VALUE.has(args[i - 1] ?? '') &&
      !arg.startsWith('--port=') &&
      !arg.startsWith('--host='),
  )
}
