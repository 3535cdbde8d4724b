import { fileURLToPath } from 'node:url'
import { svelte } from '@sveltejs/vite-plugin-svelte'
import { defineConfig } from 'vite'
import { workspaceAliases } from '../scripts/aliases.ts'
import { playgroundSyncServer } from './server/plugin.ts'

// The playground runs against the packages' sources, so edits show up without a build.
const source = (path: string) => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  root: source('.'),
  plugins: [playgroundSyncServer(), svelte()],
  resolve: {
    alias: workspaceAliases,
  },
  server: { host: '127.0.0.1' },
  // Vue's compile-time flags, set explicitly so the esm-bundler build does not warn.
  define: {
    __VUE_OPTIONS_API__: 'false',
    __VUE_PROD_DEVTOOLS__: 'false',
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false',
  },
  build: { target: 'es2022' },
})
