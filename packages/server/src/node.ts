import { getRequestListener, serve as serveNode } from '@hono/node-server'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CONSUMED } from './routes/push.js'

/** A running Node HTTP server. */
export interface NodeServer {
  /** The address it listens on. */
  readonly url: string
  /** Stops accepting connections, ends open ones, and resolves once closed. */
  close(): Promise<void>
}

/** Options of {@link serve}. */
export interface ServeOptions {
  /** @default 8787 */
  port?: number
  /** @default '127.0.0.1' */
  host?: string
  /**
   * Milliseconds a client has to send a request's headers; a slower one is disconnected
   * (a slow-loris client holds a socket for nothing). @default 10000
   */
  headersTimeout?: number
  /**
   * Milliseconds a client has to send a whole request, body included. Replies are not
   * limited: a stream stays open as long as its client reads it. @default 30000
   */
  requestTimeout?: number
}

/**
 * Serves a web-standard handler (a {@link SyncHandler}, or any `(Request) => Promise<Response>`)
 * over Node's HTTP server, with timeouts for clients that send their requests too slowly.
 * Streams end when their client disconnects.
 *
 * @example
 * import { serve } from '@changecast/server/node'
 * const server = await serve(sync, { port: 8787 })
 * console.log(`listening on ${server.url}`)
 */
export function serve(
  handler: (request: Request) => Promise<Response>,
  { port = 8787, host = '127.0.0.1', headersTimeout = 10_000, requestTimeout = 30_000 }: ServeOptions = {},
): Promise<NodeServer> {
  if (!(headersTimeout > 0) || !(requestTimeout >= headersTimeout)) {
    throw new TypeError('headersTimeout must be positive, and requestTimeout at least headersTimeout')
  }
  return new Promise((resolve, reject) => {
    const server = serveNode(
      {
        fetch: handler,
        port,
        hostname: host,
        // Node checks the timeouts every connectionsCheckingInterval (30 s by default).
        serverOptions: {
          headersTimeout,
          requestTimeout,
          connectionsCheckingInterval: Math.min(1000, headersTimeout),
        },
      },
      (info: AddressInfo) => {
        const address = info.family === 'IPv6' ? `[${info.address}]` : info.address
        resolve({
          url: `http://${address}:${info.port}`,
          close: () =>
            new Promise<void>((done) => {
              ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
              server.close(() => done())
            }),
        })
      },
    )
    server.once('error', reject)
  })
}

/** A request as Express (or another framework on Node's HTTP server) hands it on. */
type FrameworkRequest = IncomingMessage & { originalUrl?: string; body?: unknown; rawBody?: unknown }

/**
 * A web-standard handler as a Node request listener, to mount in an existing Node server or
 * in Express (`app.use('/sync', nodeListener(sync))`, with `basePath: '/sync'`). The handler
 * sees the full path (Express's `originalUrl`). Mount it before any body parser; when one ran
 * first anyway (`express.json()`), the body it parsed is passed on, and a body read without
 * being kept is answered `400` with a message that says so. Timeouts are those of your
 * server (`server.headersTimeout`, `server.requestTimeout`).
 *
 * @example
 * import { createServer } from 'node:http'
 * import { nodeListener } from '@changecast/server/node'
 * const sync = nodeListener(handler)
 * createServer((req, res) => (req.url?.startsWith('/sync/') ? sync(req, res) : res.end('my app'))).listen(3000)
 */
export function nodeListener(
  handler: (request: Request) => Promise<Response>,
): (request: IncomingMessage, response: ServerResponse) => Promise<void> {
  const listener = getRequestListener(handler)
  return (request, response) => {
    const incoming = request as FrameworkRequest
    if (incoming.originalUrl) incoming.url = incoming.originalUrl
    const { body } = incoming
    if (incoming.readableDidRead && incoming.rawBody === undefined && body != null) {
      // Read by a body parser: what it kept becomes the body again.
      if (body instanceof Uint8Array) incoming.rawBody = Buffer.from(body)
      else if (typeof body === 'string') incoming.rawBody = Buffer.from(body)
      else if (typeof body === 'object') incoming.rawBody = Buffer.from(JSON.stringify(body))
    }
    if (incoming.readableDidRead && incoming.rawBody === undefined && !/^(GET|HEAD)$/.test(incoming.method ?? '')) {
      // Read, and nothing kept: the handler would see an empty body.
      response.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: CONSUMED }))
      return Promise.resolve()
    }
    return listener(incoming, response)
  }
}
