import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url))

// The benchmark page runs the packages' sources, served by the bench runner.
export default defineConfig({
  root: source('.'),
  resolve: {
    alias: {
      '@changecast/core/sync': source('../../packages/core/src/sync/index.ts'),
      '@changecast/core': source('../../packages/core/src/index.ts'),
    },
  },
  server: { host: '127.0.0.1' },
  logLevel: 'warn',
})
