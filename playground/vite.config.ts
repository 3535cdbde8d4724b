import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

// The playground runs against the packages' sources, so edits show up without a build.
const source = (path: string) => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  root: source('.'),
  resolve: {
    alias: {
      '@changecast/core': source('../packages/core/src/index.ts'),
    },
  },
  server: { host: '127.0.0.1' },
  build: { target: 'es2022' },
})
