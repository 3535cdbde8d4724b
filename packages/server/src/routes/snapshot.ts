import type { Context } from 'hono'
import { parseRevision, ProtocolViolation } from '@changecast/core/protocol'
import type { Queryable } from '../db/port.js'
import type { Meta } from '../replicas.js'
import { readMeta } from '../store/model.js'
import { countSnapshot, readSnapshot } from '../store/snapshot.js'
import { clientIdOf, cursorOf, identify, json, limitOf, readScopes, version, type Server } from './context.js'

/** Most rows in one snapshot page, whatever `limit` asks. */
const MOST_ROWS = 10_000

/**
 * `GET /snapshot`: one page of the state at revision `rev` (the head, on the first page) of
 * the scopes the client may read; `next` names the next page. Takes turns with the
 * principal's pulls (see `limits`).
 */
export async function snapshotRoute(server: Server, c: Context): Promise<Response> {
  const { db, t } = server
  version(c)
  const clientId = clientIdOf(c)
  // A flood is refused before the database is asked anything for it.
  const principal = await identify(server, c.req.raw, clientId, (who) => server.fairness.admitRead(who.id))
  const scopes = await readScopes(server, c.req.queries('scope'), principal)
  const limit = limitOf(c, 1000)
  const asked = c.req.query('rev')
  const after = cursorOf(c.req.query('after'))
  if (after && asked === undefined) throw new ProtocolViolation('after needs the rev of the snapshot')
  const given = asked === undefined ? undefined : parseRevision(asked)
  if (asked !== undefined && given === undefined) {
    throw new ProtocolViolation('rev must be a revision (an integer ≥ 0, in decimal digits)')
  }
  return server.fairness.during(principal.id, () =>
    server.fairness.read(principal.id, async () => {
      const primary = await readMeta(db, t)
      const page = async (source: Queryable, { epoch, head, horizon }: Meta) => {
        const rev = given ?? head
        // Compacted past the snapshot's revision (or the log went back): start again.
        if (rev < horizon || rev > head) return json({ epoch, principal: principal.name, scopes, mustRefetch: true })
        const read = await readSnapshot(source, t, { rev, scopes, after, limit: Math.min(limit, MOST_ROWS) })
        const total = after ? undefined : await countSnapshot(source, t, rev, scopes)
        return new Response(
          `{"epoch":${JSON.stringify(epoch)},"principal":${JSON.stringify(principal.name)},"rev":${rev}` +
            `${scopes ? `,"scopes":${JSON.stringify(scopes)}` : ''}` +
            `${total === undefined ? '' : `,"total":${total}`}` +
            `${read.next ? `,"next":${JSON.stringify(JSON.stringify(read.next))}` : ''},"rows":[${read.rows.join(',')}]}`,
          { headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } },
        )
      }
      if (!server.replicas) return page(db, primary)
      // A later page: a replica that holds its revision. A first page: one that holds the primary's head.
      const wanted = given ?? primary.head
      const usable = (meta: Meta) => meta.epoch === primary.epoch && meta.head >= wanted && meta.horizon <= wanted
      return server.replicas.read(wanted, usable, page, primary)
    }),
  )
}
