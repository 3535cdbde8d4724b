import type { SyncServer } from './sync-server.js'

interface IncomingLike extends AsyncIterable<Uint8Array> {
  url?: string
  method?: string
  headers: Record<string, string | string[] | undefined>
  on(event: 'close', listener: () => void): unknown
}
interface OutgoingLike {
  statusCode: number
  setHeader(name: string, value: string): unknown
  flushHeaders(): void
  write(chunk: Uint8Array): unknown
  end(): unknown
  destroy(): unknown
}

/**
 * Serves a {@link SyncServer} from a Node HTTP server or a Connect/Vite middleware stack:
 * `vite.middlewares.use('/sync', syncMiddleware(server))`. Streams stay open until the
 * client goes away; a dropped-connection fault destroys the socket.
 */
export function syncMiddleware(server: SyncServer) {
  return (request: IncomingLike, response: OutgoingLike): void => {
    void (async () => {
      const chunks: Uint8Array[] = []
      if (request.method !== 'GET' && request.method !== 'HEAD') for await (const chunk of request) chunks.push(chunk)
      const abort = new AbortController()
      request.on('close', () => abort.abort())
      const headers = new Headers()
      for (const [name, value] of Object.entries(request.headers)) {
        if (typeof value === 'string') headers.set(name, value)
      }
      const body = chunks.length ? new Blob(chunks as BlobPart[]) : undefined
      const reply = await server.handle(
        new Request(new URL(request.url ?? '/', 'http://localhost'), {
          method: request.method,
          headers,
          body,
          signal: abort.signal,
        }),
      )
      if (reply.type === 'error') {
        response.destroy()
        return
      }
      response.statusCode = reply.status
      reply.headers.forEach((value, name) => response.setHeader(name, value))
      response.flushHeaders()
      if (reply.body)
        for await (const chunk of reply.body as unknown as AsyncIterable<Uint8Array>) response.write(chunk)
      response.end()
    })()
  }
}
