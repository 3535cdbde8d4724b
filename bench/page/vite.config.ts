import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'
import { workspaceAliases } from '../../scripts/aliases.ts'

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url))

// The benchmark page runs the packages' sources, served by the bench runner.
export default defineConfig({
  root: source('.'),
  resolve: {
    alias: workspaceAliases,
  },
  server: { host: '127.0.0.1' },
  logLevel: 'warn',
})
