import { http, HttpResponse, type HttpHandler } from 'msw'
import type { SyncServer } from './sync-server.js'

/**
 * msw request handlers that route `{baseUrl}/push`, `/pull`, `/stream` and `/snapshot` to an in-memory
 * {@link SyncServer}. Use them with `setupServer` (Node tests) or `setupWorker` (browser).
 *
 * @example
 * import { setupServer } from 'msw/node'
 * const server = createSyncServer()
 * setupServer(...syncHandlers(server, 'https://sync.test')).listen()
 * changecast(db, { sync: { url: 'https://sync.test' } })
 */
export function syncHandlers(server: SyncServer, baseUrl: string): HttpHandler[] {
  const base = baseUrl.replace(/\/+$/, '')
  return [
    http.all(`${base}/:route`, async ({ request }) => {
      const response = await server.handle(request)
      // A dropped connection: the client's fetch rejects with a network error.
      return response.type === 'error' ? HttpResponse.error() : response
    }),
  ]
}
