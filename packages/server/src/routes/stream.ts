import type { Context } from 'hono'
import { controllerSink, type StreamSink } from '../fanout.js'
import { readMeta } from '../store/model.js'
import { clientIdOf, identify, position, readScopes, type Server } from './context.js'

const HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' }

/**
 * The property of a stream's `Response` that hands it a sink of its own instead of its body
 * (what `serve()` does on Node: the socket itself). Returns the function that ends it.
 */
export const TAKE_OVER = Symbol.for('changecast.stream')

/** A response that may be taken over (see {@link TAKE_OVER}). */
export type StreamResponse = Response & { [TAKE_OVER]?: (sink: StreamSink) => () => void }

/**
 * `GET /stream`: Server-Sent Events — `hello`, the batches after `since`, then each new
 * one as it commits. At most a few streams per client and per principal (see `limits`).
 */
export async function streamRoute(server: Server, c: Context): Promise<Response> {
  const since = position(c)
  const clientId = clientIdOf(c)
  // Counted before the database is asked anything for it; uncounted when it ends, however it ends.
  let release: (() => void) | undefined
  try {
    const principal = await identify(server, c.req.raw, clientId, (who, id) => {
      release = server.fairness.openStream(id, who.id)
    })
    const asked = c.req.queries('scope')
    const scopes = await readScopes(server, asked, principal)
    const { epoch, head, horizon } = await readMeta(server.db, server.t)
    if (since < horizon && since <= head) {
      const hello = JSON.stringify({ epoch, principal: principal.name, head, scopes, mustRefetch: true })
      return new Response(`event: hello\ndata: ${hello}\n\n`, { headers: HEADERS })
    }
    const key = JSON.stringify(scopes)
    // Asked again before each delivery: a stream whose scopes changed is closed.
    const current = server.grants && (async () => JSON.stringify(await readScopes(server, asked, principal)) === key)
    const onClose = release
    release = undefined
    const open = server.fanout.open({
      clientId: clientId!,
      since,
      hello: { epoch, principal: principal.name, scopes, head },
      scopes,
      current,
      onClose,
      // Its catch-up takes turns with the principal's pulls and snapshot pages, on a replica when one has it.
      turn: (read) => server.fairness.during(principal.id, () => server.fairness.read(principal.id, read, 'unbounded')),
      pace: () => server.fairness.pace(principal.id),
      read: server.replicas && ((after, upTo) => server.replicas!.reader(after, upTo, epoch)),
    })
    return streamResponse(open, c.req.raw.signal, onClose)
  } finally {
    release?.()
  }
}

/**
 * The stream as a `Response`: its body opens the stream when first read (a web runtime), or
 * `serve()` takes it over first (Node). Either way it ends when the client goes away.
 */
function streamResponse(
  open: (sink: StreamSink) => () => void,
  signal: AbortSignal,
  onClose: (() => void) | undefined,
): StreamResponse {
  let end: (() => void) | undefined
  // Ended before it opened (its client went away, or its body was cancelled unread): uncounted.
  const abandon = (): void => {
    if (end) return end()
    end = () => undefined
    onClose?.()
  }
  signal.addEventListener('abort', abandon, { once: true })
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (end) return
        end = open(controllerSink(controller))
      },
      cancel: abandon,
    },
    // Nothing is read before the body is (so that a take-over finds the stream unopened); the queue counts bytes.
    new ByteLengthQueuingStrategy({ highWaterMark: 0 }),
  )
  return Object.assign(new Response(body, { headers: HEADERS }), {
    [TAKE_OVER]: (sink: StreamSink) => {
      if (end) throw new Error('this stream was opened already')
      signal.removeEventListener('abort', abandon)
      return (end = open(sink))
    },
  })
}
