// Builds the package twice, for ESM importers and for CommonJS require().
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
rmSync(join(root, 'dist'), { recursive: true, force: true })
for (const project of ['tsconfig.json', 'tsconfig.cjs.json']) {
  execFileSync(process.execPath, [tsc, '-p', join(root, project)], { stdio: 'inherit' })
}
writeFileSync(join(root, 'dist/cjs/package.json'), '{ "type": "commonjs" }\n')

// CommonJS has no import.meta: the writer thread's entry is found from __filename there.
const entry = join(root, 'dist/cjs/threads/entry.js')
const source = readFileSync(entry, 'utf8')
const rewritten = source.replace(
  /=\s*import\.meta\.url\b/,
  "= require('node:url').pathToFileURL(__filename).href",
)
if (rewritten === source || rewritten.includes('import.meta')) {
  throw new Error(`build: expected exactly one import.meta.url in ${entry}`)
}
writeFileSync(entry, rewritten)
