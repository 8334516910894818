#!/usr/bin/env node
/**
 * Builds better-sqlite3 for the Electron main process, into
 * build/native/electron-<version>/better_sqlite3.node, without touching the
 * Node build in node_modules that the tests and web mode use.
 *
 * A copy of the package is built in a temporary folder: first with a
 * prebuilt binary for Electron (prebuild-install), else compiled with
 * node-gyp against Electron's headers. Both need the internet. The result is
 * kept only if it really is a module for Electron's ABI (npm's nodedir
 * setting or a failed download can silently yield a Node build instead).
 *
 *   npm run build:native            build if missing
 *   npm run build:native -- --force build again
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import {
  ROOT,
  electronAbi,
  electronVersion,
  nativeBindingPath,
  nativeModuleAbi,
} from './electron-env.mjs'

const require = createRequire(join(ROOT, 'package.json'))

function nodeGypScript() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(
      dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
    join(
      dirname(process.execPath),
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  ]
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'))
  } catch {
    // not installed locally
  }
  return candidates.find((path) => path !== undefined && existsSync(path))
}

function run(command, args, cwd, timeout) {
  const env = { ...process.env }
  // npm's nodedir points node-gyp at Node's headers: that would build for Node, not Electron.
  delete env.npm_config_nodedir
  delete env.NPM_CONFIG_NODEDIR
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout })
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`
  return { ok: result.status === 0 && result.error === undefined, output, error: result.error }
}

function summary(output) {
  if (/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|network connectivity/.test(output)) {
    return 'download failed (no internet access)'
  }
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  const stack = lines.find((l) => l.startsWith('gyp ERR! stack Error:'))
  if (stack !== undefined) return stack.slice('gyp ERR! stack '.length, 200)
  const telling = lines.filter((l) => /err|fail|could not|unable|cannot/i.test(l))
  return (telling.at(-1) ?? lines.at(-1) ?? 'no output').slice(0, 200)
}

/**
 * Returns { ok: true, path } or { ok: false, reason }; `log` gets progress lines.
 */
export function buildNative({ force = false, log = () => {} } = {}) {
  const version = electronVersion()
  const abi = electronAbi()
  const target = nativeBindingPath(version)
  if (!force && existsSync(target) && nativeModuleAbi(target) === abi)
    return { ok: true, path: target }

  const source = dirname(require.resolve('better-sqlite3/package.json'))
  const work = mkdtempSync(join(tmpdir(), 'routemeter-native-'))
  const copy = join(work, 'better-sqlite3')
  try {
    cpSync(source, copy, {
      recursive: true,
      filter: (path) => !path.startsWith(join(source, 'build')),
    })
    const built = join(copy, 'build', 'Release', 'better_sqlite3.node')
    const attempts = []

    log(`Building better-sqlite3 for Electron ${version} (ABI ${abi})…`)
    const prebuild = join(dirname(require.resolve('prebuild-install/package.json')), 'bin.js')
    const fetched = run(
      process.execPath,
      [
        prebuild,
        '--runtime=electron',
        `--target=${version}`,
        `--arch=${process.arch}`,
        `--platform=${process.platform}`,
      ],
      copy,
      180_000,
    )
    if (!fetched.ok || !existsSync(built))
      attempts.push(`prebuilt binary: ${summary(fetched.output)}`)

    if (!existsSync(built)) {
      const gyp = nodeGypScript()
      if (gyp === undefined) attempts.push('node-gyp: not found')
      else {
        const compiled = run(
          process.execPath,
          [
            gyp,
            'rebuild',
            '--release',
            '--runtime=electron',
            `--target=${version}`,
            `--arch=${process.arch}`,
            '--dist-url=https://electronjs.org/headers',
          ],
          copy,
          900_000,
        )
        if (!compiled.ok || !existsSync(built))
          attempts.push(`node-gyp with Electron's headers: ${summary(compiled.output)}`)
      }
    }

    if (!existsSync(built)) return { ok: false, reason: attempts.join('; ') }
    const builtAbi = nativeModuleAbi(built)
    if (builtAbi !== abi) {
      return {
        ok: false,
        reason: `the build is for NODE_MODULE_VERSION ${builtAbi ?? 'unknown'}, not Electron's ${abi}`,
      }
    }
    mkdirSync(dirname(target), { recursive: true })
    copyFileSync(built, target)
    return { ok: true, path: target }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = buildNative({
    force: process.argv.includes('--force'),
    log: (line) => console.log(line),
  })
  if (result.ok) console.log(`better-sqlite3 for Electron: ${result.path}`)
  else {
    console.error(`Could not build better-sqlite3 for Electron: ${result.reason}`)
    process.exitCode = 1
  }
}
