import { getRequestListener, serve as serveNode, type Http2Bindings, type HttpBindings } from '@hono/node-server'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo, Socket } from 'node:net'
import { MAX_BACKLOG, type StreamSink } from './fanout.js'
import { CONSUMED } from './routes/push.js'
import { TAKE_OVER, type StreamResponse } from './routes/stream.js'

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
        fetch: takingOver(handler, () => server as Server),
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
  const listener = getRequestListener(takingOver(handler))
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

/**
 * The handler, with the streams it answers taken over: once its headers are written, an
 * event stream is written to its socket directly, and Node's HTTP machinery lets go of the
 * socket (its parser, request and response objects). An idle stream then costs about what
 * its socket does.
 */
function takingOver(
  handler: (request: Request) => Promise<Response>,
  server?: () => Server,
): (request: Request, env?: HttpBindings | Http2Bindings) => Promise<Response> {
  return async (request, bindings) => {
    const response = (await handler(request)) as StreamResponse
    const take = response[TAKE_OVER]
    // HTTP/1 only (an HTTP/2 stream is one of many on its connection).
    const env = bindings?.incoming.httpVersionMajor === 1 ? (bindings as HttpBindings) : undefined
    const socket = env?.incoming.socket
    if (!take || !env || !socket || socket.destroyed || request.method !== 'GET') return response
    const head = headOf(response)
    release(env.outgoing, socket, server?.())
    socket.setTimeout(0)
    socket.setNoDelay(true)
    socket.write(head)
    socket.on('close', take(socketSink(socket)))
    socket.on('error', destroy)
    // Read on (a client that goes away is noticed), and ignore what it sends.
    socket.on('data', ignore)
    return RESPONSE_ALREADY_SENT
  }
}

const ignore = (): void => undefined
function destroy(this: Socket): void {
  this.destroy()
}

/** The status line and headers of a stream (its body lasts until the connection closes). */
function headOf(response: Response): string {
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ''}`]
  response.headers.forEach((value, name) => lines.push(`${name}: ${value}`))
  lines.push('connection: close', '', '')
  return lines.join('\r\n')
}

/** A socket as a stream's sink (each sink holds its socket, and nothing else). */
function socketSink(socket: Socket): StreamSink {
  return {
    write(bytes) {
      if (socket.destroyed) return false
      socket.write(bytes)
      return socket.writableLength <= MAX_BACKLOG
    },
    end: () => socket.end(),
  }
}

/** Node's own HTTP parser pool (internal, so used only when present). */
const httpCommon = (() => {
  try {
    return createRequire(import.meta.url)('_http_common') as {
      freeParser?: (parser: unknown, request: unknown, socket: unknown) => void
    }
  } catch {
    return {}
  }
})()

type Parser = { unconsume?: () => void; finish?: () => void }

/** Detaches a socket from Node's HTTP server: its response, its listeners, its parser. */
function release(outgoing: ServerResponse, socket: Socket, server: Server | undefined): void {
  outgoing.detachSocket(socket)
  for (const event of ['data', 'end', 'timeout', 'drain', 'error', 'close', 'resume', 'pause']) {
    socket.removeAllListeners(event)
  }
  const parser = (socket as Socket & { parser?: Parser | null }).parser
  if (!parser) return
  parser.unconsume?.()
  if (server) {
    // The list the server checks request timeouts against.
    const key = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === 'http.server.connections')
    const connections = key && (server as unknown as Record<symbol, { remove?: (parser: Parser) => void }>)[key]
    connections?.remove?.(parser)
  }
  parser.finish?.()
  httpCommon.freeParser?.(parser, undefined, socket)
  ;(socket as Socket & { parser?: Parser | null }).parser = null
}
