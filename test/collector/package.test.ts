/**
 * The package as npm would publish it: `npm pack`, unpacked into a project
 * that has only what the package declares (its dependencies' types and
 * Node's), then a strict TypeScript check with skipLibCheck off of a file that
 * uses every public entry point. What the tarball holds is checked too.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { buildPackage, makeTempDir, removeTempDirs, ROOT } from './helpers.js'

afterAll(removeTempDirs)

const require = createRequire(import.meta.url)
const manifest = JSON.parse(readFileSync(join(ROOT, 'collector/package.json'), 'utf8')) as {
  dependencies: Record<string, string>
  repository?: { url: string }
  homepage?: string
  files: string[]
}

/** A typed use of each entry point, as a user's code would write it. */
const USER_CODE = `
import { bind, createCollector, type RoutemeterOptions } from 'routemeter'
import type { RequestRow } from 'routemeter/schema'
import { compareReleases, type Comparison } from 'routemeter/compare'
import Database from 'better-sqlite3'

const options: RoutemeterOptions = {
  database: 'metrics.db',
  groupBy: (req) => String(req),
  retention: { requests: '14d' },
}
export const collector = createCollector(options)
export function attach(app: object) {
  return bind(app, options)
}
export function report(path: string): Comparison {
  return compareReleases(new Database(path, { readonly: true }), {
    baseline: { versions: ['v1'] },
    candidate: { versions: ['v2'] },
  })
}
export type Row = RequestRow
`

it('packs with its license, schema and readme, and no source maps or tests', () => {
  buildPackage()
  const listing = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '-w', 'routemeter'], {
      cwd: ROOT,
      encoding: 'utf8',
    }),
  ) as Array<{ files: Array<{ path: string }> }>
  const files = listing[0]!.files.map((f) => f.path)
  expect(files).toEqual(
    expect.arrayContaining([
      'LICENSE',
      'README.md',
      'SCHEMA.md',
      'package.json',
      'dist/esm/index.js',
    ]),
  )
  expect(files.filter((f) => f.endsWith('.map') || f.startsWith('src/'))).toEqual([])
  expect(manifest.repository?.url).toMatch(/^git\+https:\/\//)
  expect(manifest.homepage).toMatch(/^https:\/\//)
})

it("its type declarations compile under strict settings with skipLibCheck off, with only the package's dependencies", () => {
  buildPackage()
  const project = makeTempDir('routemeter-types-')
  const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', project], {
    cwd: join(ROOT, 'collector'),
    encoding: 'utf8',
  }).trim()
  const modules = join(project, 'node_modules')
  mkdirSync(join(modules, 'routemeter'), { recursive: true })
  execFileSync('tar', [
    '-xzf',
    join(project, tarball),
    '-C',
    join(modules, 'routemeter'),
    '--strip-components=1',
  ])
  // What npm would install beside it: its dependencies, and the user's own @types/node.
  const link = (name: string) => {
    const from = join(ROOT, 'node_modules', name)
    mkdirSync(join(modules, name, '..'), { recursive: true })
    symlinkSync(from, join(modules, name), 'dir')
  }
  for (const name of Object.keys(manifest.dependencies)) link(name)
  link('@types/node')
  writeFileSync(join(project, 'app.ts'), USER_CODE)
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        skipLibCheck: false,
        noEmit: true,
        esModuleInterop: true,
        types: ['node'],
      },
      files: ['app.ts'],
    }),
  )
  const tsc = require.resolve('typescript/bin/tsc')
  let output = ''
  try {
    execFileSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8', cwd: project })
  } catch (error) {
    output = String((error as { stdout?: string }).stdout ?? error)
  }
  expect(output).toBe('')
})
