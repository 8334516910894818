import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  resolve: {
    // Tests run the collector's TypeScript sources; one test checks the built package.
    alias: [
      { find: /^routemeter\/schema$/, replacement: here('./collector/src/schema/index.ts') },
      { find: /^routemeter$/, replacement: here('./collector/src/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
