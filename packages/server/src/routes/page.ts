import type { Context } from 'hono'
import type { Queryable } from '../db/port.js'
import { markOf } from '../pages.js'
import type { Meta } from '../replicas.js'
import { readMeta } from '../store/model.js'
import { json, problem, version, type Server } from './context.js'
import { pullReply, readPage } from './pull.js'

/** Answers that no cache may keep. */
const NO_STORE = { 'cache-control': 'no-store' }

/**
 * `GET /page`: a cacheable catch-up page (docs/protocol.md, "Cacheable pages"), at the
 * signed address a pull redirected to. It needs no credentials: its address is the proof
 * (signed by the server, for these scopes, until `exp`). The batches of every client in
 * (`from`, `to`], in the scopes signed, as a pull reply; the same bytes whenever it is
 * asked, so any HTTP cache may keep it until the address expires.
 */
export async function pageRoute(server: Server, c: Context): Promise<Response> {
  version(c)
  const { pages, db, t } = server
  if (!pages) return problem(404, 'this server does not serve cacheable pages')
  const search = new URL(c.req.url).searchParams
  const address = await pages.parse(search)
  if (!address) {
    // Signed for a log that is gone (recreated: a new epoch, a new key): the client hears the new epoch and starts over.
    const { epoch, head } = await readMeta(db, t)
    if (search.get('epoch') && search.get('epoch') !== epoch) {
      return withHeaders(pullReply({ epoch, batches: [], upTo: head, more: false }), NO_STORE)
    }
    return problem(403, 'not a page address this server signed (changed, or of another server)', NO_STORE)
  }
  if (address.exp < Date.now()) return problem(403, 'this page address has expired: pull again', NO_STORE)
  const { epoch, scopes, from, to, mark } = address
  const primary = await readMeta(db, t)
  const named = { epoch: primary.epoch, scopes: scopes && [...scopes] }
  // Another log now (recreated, or restored from an older backup): the client hears it and starts over.
  if (primary.epoch !== epoch || to > primary.head) {
    return withHeaders(pullReply({ ...named, batches: [], upTo: primary.head, more: false }), NO_STORE)
  }
  if (from < primary.horizon) {
    return withHeaders(
      pullReply({ ...named, batches: [], upTo: primary.head, more: false, mustRefetch: true }),
      NO_STORE,
    )
  }
  // Restored and grown again to past `to` under the same epoch: the address names a log that is gone.
  if ((await markOf(db, t, to)) !== mark) {
    return json({ error: 'the log changed since this address was given: pull again' }, 503, {
      ...NO_STORE,
      'retry-after': '1',
    })
  }
  const etag = `"${c.req.query('sig')}"`
  if (c.req.header('if-none-match') === etag) return new Response(null, { status: 304, headers: { etag } })
  const read = (source: Queryable, meta: Meta) =>
    readPage(
      server,
      source,
      meta,
      { since: from, limit: to - from, principalId: '', scopes: named.scopes, bound: to },
      named,
    )
  const usable = (meta: Meta) => meta.epoch === epoch && meta.head >= to && meta.horizon <= from
  const reply = await (server.replicas ? server.replicas.read(to, usable, read, primary) : read(db, primary))
  const seconds = Math.max(0, Math.floor((address.exp - Date.now()) / 1000))
  return withHeaders(reply, { 'cache-control': `public, max-age=${seconds}, immutable`, etag })
}

function withHeaders(response: Response, headers: Record<string, string>): Response {
  for (const [name, value] of Object.entries(headers)) response.headers.set(name, value)
  return response
}
