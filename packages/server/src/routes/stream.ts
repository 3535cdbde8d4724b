import type { Context } from 'hono'
import { readMeta } from '../store/model.js'
import { clientIdOf, identify, position, readScopes, type Server } from './context.js'

const HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' }

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
    const body = server.fanout.open({
      clientId: clientId!,
      since,
      hello: { epoch, principal: principal.name, scopes, head },
      signal: c.req.raw.signal,
      scopes,
      current,
      onClose,
      // Its catch-up takes turns with the principal's pulls and snapshot pages.
      turn: (read) => server.fairness.during(principal.id, () => server.fairness.read(principal.id, read, 'unbounded')),
      pace: () => server.fairness.pace(principal.id),
    })
    return new Response(body, { headers: HEADERS })
  } finally {
    release?.()
  }
}
