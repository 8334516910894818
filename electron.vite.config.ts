import { fileURLToPath } from 'node:url'
import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'electron-vite'

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url))

/** The collector is consumed from source, like the tests do. */
const alias = [
  { find: /^routemeter\/schema$/, replacement: here('./collector/src/schema/index.ts') },
  { find: /^routemeter\/writer$/, replacement: here('./collector/src/writer.ts') },
  { find: /^routemeter\/compare$/, replacement: here('./collector/src/compare/index.ts') },
  { find: /^routemeter\/profiles$/, replacement: here('./collector/src/profiles/index.ts') },
  { find: /^routemeter\/internal\/bulk$/, replacement: here('./collector/src/bulk/index.ts') },
  { find: /^routemeter$/, replacement: here('./collector/src/index.ts') },
]

export default defineConfig({
  main: {
    resolve: { alias },
    build: {
      // out/main/serve.js also runs under plain Node 20 (web mode), not only in Electron.
      target: 'node20.19',
      // `dependencies` (better-sqlite3, chokidar) are external by default; the web server's
      // Koa packages stay external too, so out/main/serve.js uses the installed ones.
      externalizeDeps: { include: ['koa', '@koa/router'] },
      rolldownOptions: {
        input: {
          index: here('./src-main/index.ts'),
          serve: here('./src-main/web/serve.ts'),
        },
      },
    },
  },
  preload: {
    resolve: { alias },
    build: {
      rolldownOptions: {
        input: { index: here('./src-main/preload/index.ts') },
        // A sandboxed preload cannot be an ES module.
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: here('./src-renderer'),
    // Relative asset URLs: the same build is served over http:// (web mode) and over the
    // desktop app's custom protocol.
    base: './',
    resolve: { alias },
    plugins: [vue()],
    build: {
      outDir: here('./out/renderer'),
      // Web mode may be reached through an SSH tunnel: ship it small.
      minify: true,
      // ApexCharts alone is most of it; one chunk loads fine from disk or localhost.
      chunkSizeWarningLimit: 1200,
      rolldownOptions: { input: here('./src-renderer/index.html') },
    },
  },
})
