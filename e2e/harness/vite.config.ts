import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'
import { workspaceAliases } from '../../scripts/aliases.ts'

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url))

// Serves the harness page (and its worker) against the packages' sources.
export default defineConfig({
  root: source('.'),
  resolve: {
    alias: workspaceAliases,
  },
  server: { host: '127.0.0.1' },
  worker: { format: 'es' },
})
