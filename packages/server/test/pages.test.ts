// Cacheable catch-up pages behind a real caching proxy (Debian's nginx, proxy_cache, started
// by this file): 1,000 users catching up from the same position cost the origin one request
// per page; a user never receives, through the cache, a page of scopes it cannot read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { PullReply } from '@changecast/core/protocol'
import { createSyncHandler, jwt, openPGlite, type SyncHandler } from '@changecast/server'
import { serve, type NodeServer } from '@changecast/server/node'
import { startCachingProxy } from '../../../scripts/nginx.mjs'
import { signToken } from '../../../scripts/sync-server-process.mjs'
import { until } from '../../core/test/sync-helpers.js'

const SECRET = 'pages-test-secret'
const REVISIONS = 50
const WRITES = 200
const CLIENTS = 1000

let sync: SyncHandler
let origin: NodeServer
let proxy: Awaited<ReturnType<typeof startCachingProxy>>
/** Requests that reached the origin, by path and query. */
const reached: string[] = []

beforeAll(async () => {
  sync = createSyncHandler({
    database: openPGlite(),
    authenticate: jwt({ secret: SECRET }),
    scopeOf: ({ value }) => (value as { project: string }).project,
    pages: { revisions: REVISIONS, ttl: 3_600_000 },
    limits: { readsPerPrincipal: 4 },
  })
  await sync.ready
  // Revisions 1–200: odd ones in project p1, even ones in p2.
  for (let rev = 1; rev <= WRITES; rev++) {
    const project = rev % 2 ? 'p1' : 'p2'
    await sync.write([{ type: 'update', table: 'tasks', key: rev, value: { id: rev, project } }])
  }
  origin = await serve(
    (request) => {
      const url = new URL(request.url)
      reached.push(`${url.pathname}${url.search}`)
      return sync(request)
    },
    { port: 0 },
  )
  proxy = await startCachingProxy(origin.url)
}, 120_000)

afterAll(async () => {
  await proxy?.stop()
  await origin?.close()
  await sync?.close()
})

const token = (user: string, scopes: string[]) => signToken(SECRET, user, { scopes })

/** Pulls from `since` through the proxy until the server has no more (redirects followed, as fetch does). */
async function catchUp(user: string, scopes: string[], clientId: string, since = 0) {
  const revs: number[] = []
  const pages: string[] = []
  const authorization = `Bearer ${token(user, scopes)}`
  for (;;) {
    const response = await fetch(`${proxy.url}/pull?v=2&since=${since}&limit=20&clientId=${clientId}`, {
      headers: { authorization },
    })
    expect(response.status).toBe(200)
    if (response.redirected) pages.push(new URL(response.url).search)
    const reply = (await response.json()) as PullReply
    revs.push(...reply.batches.map((batch) => batch.rev))
    since = reply.upTo
    if (!reply.more) return { revs, pages, since }
  }
}

const pageRequests = () => reached.filter((path) => path.startsWith('/page?'))
const odd = Array.from({ length: WRITES / 2 }, (_, i) => 2 * i + 1)
const even = Array.from({ length: WRITES / 2 }, (_, i) => 2 * i + 2)

describe('cacheable catch-up pages behind nginx proxy_cache', () => {
  it('1,000 users catching up from the same position cost the origin one request per page', async () => {
    const before = pageRequests().length
    const results = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) => catchUp(`user-${i}`, ['p1'], `client-${i}`)),
    )
    for (const { revs, pages, since } of results) {
      // Exactly the batches of p1, each once, in order.
      expect(revs).toEqual(odd)
      expect(since).toBe(WRITES)
      expect(pages).toHaveLength(WRITES / REVISIONS)
    }
    const asked = pageRequests().slice(before)
    const addresses = new Set(results.flatMap((result) => result.pages))
    // Everyone within one expiry step gets the same addresses: one per page.
    const expiries = new Set([...addresses].map((search) => new URLSearchParams(search).get('exp')))
    expect(addresses.size).toBe((WRITES / REVISIONS) * expiries.size)
    // Each address reached the origin once, however many asked at once.
    expect(asked).toHaveLength(addresses.size)
    expect(new Set(asked).size).toBe(asked.length)
    const log = proxy.cacheLog().filter((entry) => entry.uri.startsWith('/page?'))
    expect(log.filter((entry) => entry.cache === 'MISS')).toHaveLength(addresses.size)
    expect(log.length).toBeGreaterThanOrEqual(CLIENTS * (WRITES / REVISIONS))
  }, 300_000)

  it('a user never receives a page of scopes it cannot read through the cache', async () => {
    const p1 = await catchUp('alice', ['p1'], 'alice-1')
    const p2 = await catchUp('bob', ['p2'], 'bob-1')
    expect(p1.revs).toEqual(odd)
    expect(p2.revs).toEqual(even)
    // Other scopes, other addresses.
    expect(p1.pages.filter((search) => p2.pages.includes(search))).toEqual([])

    // An address of p1 changed to name p2, or p1 and p2: refused by the origin, not served from the cache.
    const search = new URLSearchParams(p1.pages[0])
    for (const change of [
      (params: URLSearchParams) => params.set('scope', 'p2'),
      (params: URLSearchParams) => params.append('scope', 'p2'),
      (params: URLSearchParams) => params.set('to', String(WRITES)),
      (params: URLSearchParams) => params.set('exp', String(Number(params.get('exp')) + 3_600_000)),
    ]) {
      const forged = new URLSearchParams(search)
      change(forged)
      const response = await fetch(`${proxy.url}/page?${forged.toString()}`)
      expect(response.status).toBe(403)
      expect(response.headers.get('x-cache-status')).not.toBe('HIT')
      expect(await response.text()).not.toContain('"rows"')
    }

    // Pulls are each user's own: never cached, and never another's.
    const mine = await fetch(`${proxy.url}/pull?v=2&since=${WRITES - 3}&clientId=alice-1`, {
      headers: { authorization: `Bearer ${token('alice', ['p1'])}` },
    })
    expect(mine.headers.get('x-cache-status')).toBeNull()
    expect(mine.headers.get('cache-control')).toBe('no-store')
    expect(((await mine.json()) as PullReply).batches.map((batch) => batch.rev)).toEqual([WRITES - 1])
  }, 60_000)

  it('a page holds its batches whatever is written after it; the last, partial page is never cached', async () => {
    const first = await catchUp('carol', ['p1', 'p2'], 'carol-1')
    expect(first.revs).toEqual(Array.from({ length: WRITES }, (_, i) => i + 1))
    await sync.write([{ type: 'update', table: 'tasks', key: 1, value: { id: 1, project: 'p1', late: true } }])
    // From the position before the last page: the cached page, then the new batch.
    const again = await catchUp('carol', ['p1', 'p2'], 'carol-1', WRITES - REVISIONS)
    expect(again.revs).toEqual([...Array.from({ length: REVISIONS }, (_, i) => WRITES - REVISIONS + i + 1), 201])
    expect(again.pages).toHaveLength(1)
  }, 60_000)
})

describe('page addresses', () => {
  it('expire: an address older than its expiry is refused, and the pull gives a new one', async () => {
    const handler = createSyncHandler({
      database: openPGlite(),
      authenticate: jwt({ secret: SECRET }),
      pages: { revisions: 2, ttl: 1000 },
      basePath: '/sync',
    })
    try {
      await handler.ready
      for (let rev = 1; rev <= 4; rev++) {
        await handler.write([{ type: 'update', table: 'tasks', key: rev, value: { id: rev } }])
      }
      const pull = () =>
        handler(
          new Request('http://sync.test/sync/pull?v=2&since=0&clientId=c', {
            headers: { authorization: `Bearer ${token('u', [])}` },
          }),
        )
      const redirect = await pull()
      expect(redirect.status).toBe(303)
      expect(redirect.headers.get('cache-control')).toBe('no-store')
      const address = new URL(redirect.headers.get('location')!, 'http://sync.test/sync/pull')
      expect(address.pathname).toBe('/sync/page')
      const page = await handler(new Request(address))
      expect(page.status).toBe(200)
      expect(page.headers.get('cache-control')).toMatch(/^public, max-age=\d+, immutable$/)
      const reply = (await page.json()) as PullReply & { principal?: string }
      expect(reply).toMatchObject({ upTo: 2, more: true })
      // The same bytes for everyone: no principal.
      expect(reply.principal).toBeUndefined()
      await until(async () => (await handler(new Request(address))).status === 403, { what: 'the address to expire' })
      const renewed = await pull()
      expect(renewed.headers.get('location')).not.toBe(redirect.headers.get('location'))
    } finally {
      await handler.close()
    }
  }, 30_000)
})
