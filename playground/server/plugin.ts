// Serves the playground's sync server (./rooms.ts: the real @changecast/server on PGlite)
// under /api/sync from the Vite dev server, so every tab talks to the same one. The rooms
// module is loaded through Vite, with the playground's aliases: it runs the packages'
// sources, as the page does, with nothing to build first.
import { fileURLToPath } from 'node:url'
import type { Plugin } from 'vite'
import type { createRooms } from './rooms.ts'

export function playgroundSyncServer(): Plugin {
  return {
    name: 'changecast-playground-sync',
    configureServer(vite) {
      const module = fileURLToPath(new URL('./rooms.ts', import.meta.url))
      const dataDir = fileURLToPath(new URL('../.changecast', import.meta.url))
      let rooms: Promise<ReturnType<typeof createRooms>> | undefined
      const load = () =>
        (rooms ??= vite
          .ssrLoadModule(module)
          .then((loaded) => (loaded as { createRooms: typeof createRooms }).createRooms({ dataDir })))
      vite.middlewares.use('/api/sync', (request, response, next) => {
        load().then(
          (found) => found.handle(request, response, next),
          (error: Error) => next(error),
        )
      })
      vite.httpServer?.once('close', () => void rooms?.then((found) => found.close()))
    },
  }
}
