import type { Context } from 'hono'
import { LIMITS, type PullReply } from '@changecast/core/protocol'
import { batchJson, batchSize, readAfter } from '../store/log.js'
import type { Queryable } from '../db/port.js'
import type { Meta } from '../replicas.js'
import { readMeta } from '../store/model.js'
import { markOf } from '../pages.js'
import { clientIdOf, identify, limitOf, position, readScopes, type Server } from './context.js'

/** Most batches in one pull page, whatever `limit` asks. */
const MOST_BATCHES = 1000

/**
 * `GET /pull`: the batches after `since` that the client may read, other clients' only, in
 * one page of at most `limit` batches and 8 MiB; `upTo` says how far it brings the client.
 * Each principal's pulls and snapshot pages take turns (see `limits`).
 */
export async function pullRoute(server: Server, c: Context): Promise<Response> {
  const { db, t } = server
  const since = position(c)
  const limit = limitOf(c, 50)
  const clientId = clientIdOf(c)
  // A flood is refused before the database is asked anything for it.
  const principal = await identify(server, c.req.raw, clientId, (who) => server.fairness.admitRead(who.id))
  const scopes = await readScopes(server, c.req.queries('scope'), principal)
  return server.fairness.during(principal.id, () =>
    server.fairness.read(principal.id, async () => {
      const primary = await readMeta(db, t)
      // A whole cacheable page starts here: the client is sent to its signed address.
      const whole = server.pages?.pageAt(since, primary.head)
      if (whole && since >= primary.horizon) return redirectToPage(server, primary.epoch, scopes, whole)
      const named = { epoch: primary.epoch, principal: principal.name, scopes }
      // With pages, a pull stops at the next page boundary (the next request gets a page).
      const bound = server.pages?.boundaryAfter(since)
      const page = (source: Queryable, meta: Meta) =>
        readPage(
          server,
          source,
          meta,
          { since, limit, clientId, principalId: principal.id, scopes, bound },
          named,
          primary.head,
        )
      if (!server.replicas) return page(db, primary)
      // A replica that holds the client's position, and brings it further (or holds all the primary does).
      const usable = (meta: Meta) =>
        meta.epoch === primary.epoch && meta.head >= since && (meta.head > since || meta.head >= primary.head)
      return server.replicas.read(since, usable, page, primary)
    }),
  )
}

/** `303 See Other` to the signed address of the cacheable page `whole` of these scopes. */
async function redirectToPage(
  server: Server,
  epoch: string,
  scopes: string[] | undefined,
  whole: { from: number; to: number },
): Promise<Response> {
  const pages = server.pages!
  const mark = await markOf(server.db, server.t, whole.to)
  const query = await pages.query({ epoch, scopes, ...whole, mark, exp: pages.expiry() })
  // Relative: resolved against this request's path (`…/pull` → `…/page`), whatever the base path or proxy.
  return new Response(null, { status: 303, headers: { location: `page?${query}`, 'cache-control': 'no-store' } })
}

/** What one page is read for. */
export interface PageRead {
  since: number
  limit: number
  /** Left out (its own batches); none for a cacheable page. */
  clientId?: string
  principalId: string
  scopes?: string[]
  /** Newest revision to read (a page boundary). @default the head */
  bound?: number
}

/**
 * One pull page read from `source` (the primary, or a replica that holds `since`), up to
 * the head `meta` gives (or `bound`); `more` while that is short of `primaryHead` (the
 * primary's head when the request came: every revision acknowledged before it), always
 * for a cacheable page (`primaryHead` undefined: its reply must hold whenever it is served).
 */
export async function readPage(
  server: Server,
  source: Queryable,
  { head: newest, horizon }: Meta,
  { since, limit, clientId, principalId, scopes, bound }: PageRead,
  named: { epoch: string; principal?: string; scopes?: string[] },
  primaryHead?: number,
): Promise<Response> {
  const { t } = server
  const head = Math.min(newest, bound ?? newest)
  // The log does not reach the client's position (it was recreated, or restored from an
  // older backup): upTo below since tells the client to start over.
  if (since > newest) return pullReply({ ...named, batches: [], upTo: newest, more: false })
  // Compacted past the client's position: it must fetch a snapshot.
  if (since < horizon) return pullReply({ ...named, batches: [], upTo: newest, more: false, mustRefetch: true })
  const take = Math.min(limit, MOST_BATCHES)
  const visible = scopes && new Set(scopes)
  const page: string[] = []
  let last = since
  let bytes = 0
  let read = 0
  let queries = 0
  let cut = false
  let exhausted = false
  // Read in parts of MAX_ROWS changes, each its own query, pausing between two while users
  // who ask less have requests under way: they are answered meanwhile (PGlite, in this
  // process, runs one query at a time), and no read holds far more than a page.
  while (!cut && !exhausted && read < take) {
    if (queries > 0) await server.fairness.pace(principalId)
    queries++
    const { batches: rows, more } = await readAfter(source, t, last, take - read, {
      upTo: head,
      scopes,
      between: () => (queries++, server.fairness.pace(principalId)),
    })
    read += rows.length
    exhausted = !more
    for (const row of rows) {
      const size = batchSize(row)
      if (page.length > 0 && bytes + size > LIMITS.pushBytes) {
        cut = true
        break
      }
      last = row.rev
      if (row.origin === clientId) continue
      const json = batchJson(row, visible)
      if (json === undefined) continue
      bytes += size
      page.push(json)
    }
  }
  // Compacted past `since` between two reads: what was read may lack deletes. Start over.
  if (queries > 1 && (await readMeta(source, t)).horizon > since) {
    return pullReply({ ...named, batches: [], upTo: newest, more: false, mustRefetch: true })
  }
  // Every batch up to head read, those of other scopes left out: the client is at head.
  const upTo = exhausted && !cut ? head : last
  const more = primaryHead === undefined || upTo < Math.max(newest, primaryHead)
  return pullReply({ ...named, batches: page, upTo, more })
}

/** A pull reply whose batches are JSON text already. */
export function pullReply({
  epoch,
  principal,
  scopes,
  batches,
  upTo,
  more,
  mustRefetch,
}: Omit<PullReply, 'batches'> & { batches: string[]; scopes?: string[]; mustRefetch?: boolean }): Response {
  return new Response(
    `{"epoch":${JSON.stringify(epoch)}${principal === undefined ? '' : `,"principal":${JSON.stringify(principal)}`}` +
      `${scopes ? `,"scopes":${JSON.stringify(scopes)}` : ''}` +
      `${mustRefetch ? ',"mustRefetch":true' : ''},"batches":[${batches.join(',')}],"upTo":${upTo},"more":${more}}`,
    { headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } },
  )
}
