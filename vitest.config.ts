import { fileURLToPath } from 'node:url'
import { configDefaults, defineConfig } from 'vitest/config'

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  resolve: {
    // Tests run the collector's TypeScript sources; one test checks the built package.
    alias: [
      { find: /^routemeter\/schema$/, replacement: here('./collector/src/schema/index.ts') },
      { find: /^routemeter\/writer$/, replacement: here('./collector/src/writer.ts') },
      { find: /^routemeter\/compare$/, replacement: here('./collector/src/compare/index.ts') },
      { find: /^routemeter\/profiles$/, replacement: here('./collector/src/profiles/index.ts') },
      {
        find: /^routemeter\/internal\/bulk$/,
        replacement: here('./collector/src/bulk/index.ts'),
      },
      { find: /^routemeter$/, replacement: here('./collector/src/index.ts') },
    ],
  },
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/e2e/**', 'test/electron/**'],
        },
      },
      {
        // The built app in Chromium (web mode) and in Electron where it can start: the build
        // happens once, in the global setup, and the files run one after the other.
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts', 'test/electron/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          fileParallelism: false,
        },
      },
    ],
  },
})
