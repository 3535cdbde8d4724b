import type { Plugin } from 'vite'
import { syncMiddleware } from './node-middleware.js'
import { createSyncServer, type SyncServer } from './sync-server.js'

/** Options of {@link syncServerPlugin}. */
export interface SyncServerPluginOptions {
  /** Where the protocol is served: `{path}/push`, `/pull`, `/stream`, `/snapshot`. @default '/sync' */
  path?: string
}

/**
 * A Vite plugin that serves an in-memory sync server (one for every tab of the app) under
 * `path`, in `vite` dev and in `vite preview` alike.
 *
 * @example
 * // vite.config.ts
 * import { defineConfig } from 'vite'
 * import { syncServerPlugin } from '@changecast/testing/vite'
 *
 * export default defineConfig({
 *   plugins: [syncServerPlugin()],
 * })
 */
export function syncServerPlugin(
  server: SyncServer = createSyncServer(),
  { path = '/sync' }: SyncServerPluginOptions = {},
): Plugin {
  if (!/^\/[^?#]*[^/?#]$/.test(path)) {
    throw new TypeError(`syncServerPlugin: path must start with '/' and not end with one, got ${JSON.stringify(path)}.`)
  }
  const handle = syncMiddleware(server)
  return {
    name: 'changecast-sync-server',
    // Mounted under `path`: Connect strips it, and the server answers any base path.
    configureServer(vite) {
      vite.middlewares.use(path, handle)
    },
    configurePreviewServer(preview) {
      preview.middlewares.use(path, handle)
    },
  }
}
