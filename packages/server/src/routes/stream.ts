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
  const principal = await identify(server, c.req.raw, clientId)
  const asked = c.req.queries('scope')
  const scopes = await readScopes(server, asked, principal)
  const { epoch, head, horizon } = await readMeta(server.db, server.t)
  if (since < horizon && since <= head) {
    const hello = JSON.stringify({ epoch, principal: principal.name, head, scopes, mustRefetch: true })
    return new Response(`event: hello\ndata: ${hello}\n\n`, { headers: HEADERS })
  }
  const release = server.fairness.openStream(clientId!, principal.id)
  const key = JSON.stringify(scopes)
  // Asked again before each delivery: a stream whose scopes changed is closed.
  const current = server.grants && (async () => JSON.stringify(await readScopes(server, asked, principal)) === key)
  const body = server.fanout.open({
    clientId: clientId!,
    since,
    hello: { epoch, principal: principal.name, scopes },
    signal: c.req.raw.signal,
    scopes,
    current,
    onClose: release,
  })
  return new Response(body, { headers: HEADERS })
}
