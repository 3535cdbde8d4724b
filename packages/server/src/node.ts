import { serve as serveNode } from '@hono/node-server'
import type { AddressInfo } from 'node:net'

/** A running Node HTTP server. */
export interface NodeServer {
  /** The address it listens on. */
  readonly url: string
  /** Stops accepting connections, ends open ones, and resolves once closed. */
  close(): Promise<void>
}

/**
 * Serves a web-standard handler (a {@link SyncHandler}, or any `(Request) => Promise<Response>`)
 * over Node's HTTP server. Streams end when their client disconnects.
 *
 * @example
 * import { serve } from '@changecast/server/node'
 * const server = await serve(sync, { port: 8787 })
 * console.log(`listening on ${server.url}`)
 */
export function serve(
  handler: (request: Request) => Promise<Response>,
  { port = 8787, host = '127.0.0.1' }: { port?: number; host?: string } = {},
): Promise<NodeServer> {
  return new Promise((resolve, reject) => {
    const server = serveNode({ fetch: handler, port, hostname: host }, (info: AddressInfo) => {
      const address = info.family === 'IPv6' ? `[${info.address}]` : info.address
      resolve({
        url: `http://${address}:${info.port}`,
        close: () =>
          new Promise<void>((done) => {
            ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
            server.close(() => done())
          }),
      })
    })
    server.once('error', reject)
  })
}
