// The request fuzzer: random and mutated protocol requests (fuzz.ts) against each server.
// Properties: never a 5xx; every 4xx says why (JSON with `error`); a push answered 4xx
// stores nothing; and the server still serves a client afterwards.
//
// CI runs a fixed set (FUZZ_REQUESTS per backend, from seed FUZZ_SEED). `pnpm test:fuzz`
// runs 10,000 per backend from a new seed each time; a failure prints its seed and request,
// and `FUZZ_SEED=<seed> pnpm test:fuzz` replays it.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createSyncServer } from '@changecast/testing'
import { createSyncHandler } from '@changecast/server'
import { z } from 'zod'
import { seeded } from '../../core/test/sync-helpers.js'
import { realDatabase } from './backends.js'
import { fuzzRequests, type FuzzRequest } from './fuzz.js'

const COUNT = Number(process.env.FUZZ_REQUESTS ?? 600)
const SEED = Number(process.env.FUZZ_SEED ?? 20261205)

/** Who may read and write which project: u1 reads and writes p1; u2 reads both, writes p2. */
const GRANTS: Record<string, { read: string[]; write: string[] }> = {
  u1: { read: ['p1'], write: ['p1'] },
  u2: { read: ['p1', 'p2'], write: ['p2'] },
}
const grant = (user: string | null) => (user !== null && Object.hasOwn(GRANTS, user) ? GRANTS[user]! : { read: [] })
const scopeOf = ({ value }: { value: unknown }) => {
  const project = (value as { project?: unknown } | null)?.project
  if (typeof project !== 'string') throw new Error('the value has no project')
  return project
}

interface Target {
  handle(request: Request): Promise<Response>
  /** Batches stored so far. */
  head(): Promise<number>
  close(): Promise<void>
}

async function target(backend: 'memory' | 'pglite' | 'postgres', tableList: boolean): Promise<Target> {
  if (backend === 'memory') {
    const server = createSyncServer({
      scopeOf,
      scopes: (request) => grant(request.headers.get('x-user')),
      principal: (request) => request.headers.get('x-user') ?? undefined,
    })
    return {
      handle: (request) => server.handle(request),
      head: () => Promise.resolve(server.batches.length),
      close: () => Promise.resolve(server.close()),
    }
  }
  const { database, close } = await realDatabase(backend)
  const handler = createSyncHandler({
    database,
    authenticate: (request) => {
      const user = request.headers.get('x-user')
      return user ? { id: user } : undefined
    },
    // Without a table list (as the CLI), every table name reaches the database.
    tables: tableList
      ? { todos: { schema: z.object({ project: z.string(), title: z.string().max(100) }) }, notes: {} }
      : undefined,
    scopeOf,
    scopes: (principal) => grant(principal.id),
    // The fuzzer's requests come one at a time: no request waits for another.
    limits: { queuedReadsPerPrincipal: 0 },
    pages: { revisions: 5 },
  })
  await handler.ready
  return {
    handle: handler,
    async head() {
      const [row] = await database.query<{ head: string | number }>('select head from changecast_meta where id = 1')
      return Number(row!.head)
    },
    async close() {
      await handler.close()
      await close()
    },
  }
}

const describeRequest = (request: FuzzRequest) =>
  `${request.method} ${request.path.slice(0, 300)} ${JSON.stringify(request.headers)}${
    request.body === undefined ? '' : ` ${request.body.slice(0, 600)}`
  }`

for (const [backend, tableList] of [
  ['memory', false],
  ['pglite', true],
  ['pglite', false],
  ['postgres', true],
  ['postgres', false],
] as const) {
  const name = `${backend}${tableList ? ', with a table list' : ''}`
  describe(`request fuzzer (${name})`, () => {
    let server: Target | undefined
    // Refused writes are logged with their detail (one line each): not wanted here.
    beforeEach(() => void vi.spyOn(console, 'warn').mockImplementation(() => undefined))
    afterEach(async () => {
      vi.restoreAllMocks()
      await server?.close()
      server = undefined
    })

    it(
      `${COUNT} random and mutated requests from seed ${SEED}: no 5xx, every 4xx says why and stores nothing, and the server still serves`,
      { timeout: 60_000 + COUNT * 30 },
      async () => {
        server = await target(backend, tableList)
        const statuses = new Map<number, number>()
        let n = 0
        for (const fuzz of fuzzRequests(seeded(SEED), COUNT)) {
          const where = `seed ${SEED}, request ${n++}: ${describeRequest(fuzz)}`
          let request: Request
          try {
            request = new Request(`http://sync.test${fuzz.path}`, {
              method: fuzz.method,
              headers: fuzz.headers,
              body: fuzz.body,
            })
          } catch {
            continue // Not a request anyone can send (fetch refuses it too).
          }
          const before = fuzz.kind === 'push' ? await server.head() : 0
          const response = await server.handle(request)
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
          if (response.status >= 500) expect.fail(`${response.status} ${await response.text()} for ${where}`)
          if (fuzz.kind === 'stream' && response.status === 200) {
            await response.body?.cancel()
            continue
          }
          const text = await response.text()
          if (response.status >= 400 && fuzz.method !== 'HEAD') {
            let error: unknown
            try {
              error = (JSON.parse(text) as { error?: unknown }).error
            } catch {
              // Reported below.
            }
            if (typeof error !== 'string' || error === '')
              expect.fail(`${response.status} without a reason (${text.slice(0, 200)}) for ${where}`)
          }
          if (fuzz.kind === 'push' && response.status >= 400 && (await server.head()) !== before) {
            expect.fail(`a ${response.status} push stored a batch: ${where}`)
          }
        }
        // Merged updates' paths (`__proto__.polluted`) never reached a prototype.
        expect(({} as { polluted?: unknown }).polluted).toBeUndefined()
        // Still serving: one client pushes, another pulls it.
        const push = await server.handle(
          new Request('http://sync.test/push', {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-user': 'u1' },
            body: JSON.stringify({
              v: 2,
              clientId: 'after-the-fuzz',
              batches: [
                {
                  rev: 1,
                  tx: 'after',
                  at: 1,
                  changes: [{ type: 'create', table: 'todos', key: 'after', value: { project: 'p1', title: 'ok' } }],
                },
              ],
            }),
          }),
        )
        expect(push.status).toBe(200)
        // Page after page (cacheable pages redirected to, as fetch follows them) up to the head.
        let text = ''
        for (let since = 0, url = ''; ;) {
          const pulled = await server.handle(
            new Request(url || `http://sync.test/pull?v=2&since=${since}&limit=1000&clientId=u2-reader`, {
              headers: { 'x-user': 'u2' },
            }),
          )
          url = pulled.status === 303 ? new URL(pulled.headers.get('location')!, 'http://sync.test/pull').href : ''
          if (url) continue
          expect(pulled.status).toBe(200)
          const reply = (await pulled.json()) as { upTo: number; more: boolean }
          text += JSON.stringify(reply)
          since = reply.upTo
          if (!reply.more) break
        }
        expect(text).toContain('"key":"after"')
        // The fuzz reaches past the parsers: some pushes are stored, some refused by rules, some pulls answered.
        expect(statuses.get(200) ?? 0).toBeGreaterThan(COUNT / 20)
        expect(statuses.get(400) ?? 0).toBeGreaterThan(COUNT / 20)
        console.info(`[fuzz ${name}] seed ${SEED}: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`)
      },
    )
  })
}
