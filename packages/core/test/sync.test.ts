import Dexie, { type Table } from 'dexie'
import { http, HttpResponse } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  changecast,
  SyncError,
  type ChangeEvent,
  type Feed,
  type SyncOptions,
  type SyncRejection,
  type TableMap,
} from '@changecast/core'
import { createSyncServer, syncHandlers, type SyncServer } from '@changecast/testing'
import { LOG_TABLE } from '../src/log/changelog.js'

type Todo = { id: number; title: string; done?: boolean }
type Db = Dexie & { todos: Table<Todo, number> }

const URL = 'https://sync.test/api'
const mock = setupServer()
beforeAll(() => mock.listen({ onUnhandledRequest: 'error' }))
afterAll(() => mock.close())

let counter = 0
const open: Array<{ db: Dexie; feed: { close(): void } }> = []

async function client(server: SyncServer | undefined, options: Partial<SyncOptions> = {}, name?: string) {
  const db = new Dexie(name ?? `sync-${Date.now()}-${++counter}`) as Db
  db.version(1).stores({ todos: 'id' })
  const feed: Feed<TableMap<Db>> = changecast(db, {
    channel: false,
    sync: { url: URL, pull: 'poll', interval: 20, backoff: { base: 5, cap: 40 }, ...options },
  })
  if (server) mock.use(...syncHandlers(server, URL))
  const events: ChangeEvent[] = []
  feed.on('*', (event) => events.push(event as ChangeEvent))
  const errors: SyncError[] = []
  const rejections: SyncRejection[] = []
  feed.sync!.onError((error) => errors.push(error))
  feed.sync!.onRejected((rejection) => rejections.push(rejection))
  await db.open()
  open.push({ db, feed })
  return { db, feed, sync: feed.sync!, events, errors, rejections }
}

afterEach(async () => {
  for (const { db, feed } of open.splice(0)) {
    feed.close()
    db.close()
    await Dexie.delete(db.name)
  }
  mock.resetHandlers()
})

const outbox = (db: Dexie, after: number) => db.table(LOG_TABLE).where(':id').above(after).count()

describe('sync: push', () => {
  it('pushes committed transactions with an Idempotency-Key and empties the outbox once acknowledged', async () => {
    const server = createSyncServer()
    const keys: string[] = []
    mock.events.on('request:start', ({ request }) => {
      const key = request.headers.get('idempotency-key')
      if (key) keys.push(key)
    })
    const { db, sync } = await client(server)
    await db.todos.put({ id: 1, title: 'one' })
    await db.transaction('rw', db.todos, async () => {
      await db.todos.put({ id: 2, title: 'two' })
      await db.todos.update(1, { done: true })
    })
    await sync.flush()
    expect(server.batches.map((b) => b.changes.map((c) => `${c.type} ${String(c.key)}`))).toEqual([
      ['create 1'],
      ['create 2', 'update 1'],
    ])
    expect(server.value('todos', 1)).toEqual({ id: 1, title: 'one', done: true })
    expect(sync.status).toMatchObject({ state: 'idle', outbox: 0, lastSyncedRev: 2, leader: true })
    expect(keys.some((key) => /^[\w-]+:1-2$/.test(key))).toBe(true)
    mock.events.removeAllListeners()
  })

  it('sends headers from an async function (auth tokens)', async () => {
    const server = createSyncServer()
    const seen: Array<string | null> = []
    mock.use(
      http.all(`${URL}/:route`, async ({ request }) => {
        seen.push(request.headers.get('authorization'))
        return server.handle(request)
      }),
    )
    const { db, sync } = await client(undefined, { headers: () => Promise.resolve({ authorization: 'Bearer t0k3n' }) })
    await db.todos.put({ id: 1, title: 'one' })
    await sync.flush()
    expect(seen.length).toBeGreaterThan(0)
    expect(new Set(seen)).toEqual(new Set(['Bearer t0k3n']))
  })

  it('retries 5xx, 429 and network errors with backoff, honouring Retry-After, then succeeds', async () => {
    const server = createSyncServer({ failureRate: 1, retryAfter: 0.05 })
    const { db, sync, errors } = await client(server)
    await db.todos.put({ id: 1, title: 'one' })
    await vi.waitFor(() => expect(errors.length).toBeGreaterThanOrEqual(2))
    expect(errors.every((error) => error.retrying && (error.status === 503 || error.status === 429))).toBe(true)
    expect(sync.status.state).toBe('error')
    expect(sync.status.outbox).toBe(1)
    server.configure({ failureRate: 0, dropRate: 1 })
    await vi.waitFor(() => expect(errors.some((error) => error.status === undefined)).toBe(true))
    await vi.waitFor(() => expect(sync.status.state).toBe('offline'))
    server.configure({ dropRate: 0 })
    await vi.waitFor(() => expect(server.batches).toHaveLength(1), { timeout: 5000 })
    await vi.waitFor(() => expect(sync.status).toMatchObject({ state: 'idle', outbox: 0 }))
  })

  it('waits at least as long as Retry-After asks before retrying', async () => {
    const server = createSyncServer({ failureRate: 1, retryAfter: 0.3 })
    const times: number[] = []
    mock.use(
      http.post(`${URL}/push`, async ({ request }) => {
        times.push(Date.now())
        if (times.length === 2) server.configure({ failureRate: 0 })
        return server.handle(request)
      }),
      ...syncHandlers(server, URL),
    )
    const { db, sync } = await client(undefined, { pull: false })
    await db.todos.put({ id: 1, title: 'one' })
    await vi.waitFor(() => expect(server.batches).toHaveLength(1), { timeout: 5000 })
    expect(times.length).toBeGreaterThanOrEqual(2)
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(290)
    expect(sync.status.serverRev).toBe(0)
  })

  it('refuses a reply larger than 10 MB, keeping the outbox', async () => {
    const server = createSyncServer()
    let huge = true
    mock.use(
      http.post(`${URL}/push`, async ({ request }) => {
        if (!huge) return server.handle(request)
        huge = false
        return new HttpResponse(`{"acked":[1],"rejected":[],"padding":"${'x'.repeat(11 * 1024 * 1024)}"}`, {
          headers: { 'content-type': 'application/json' },
        })
      }),
      ...syncHandlers(server, URL),
    )
    const { db, sync, errors } = await client(undefined)
    await db.todos.put({ id: 1, title: 'one' })
    await vi.waitFor(() =>
      expect(errors.some((e) => /more than 10485760 bytes|over the 10485760 limit/.test(e.message))).toBe(true),
    )
    await vi.waitFor(() => expect(server.batches).toHaveLength(1), { timeout: 5000 })
    await sync.flush()
    expect(sync.status.outbox).toBe(0)
  })

  it('does not duplicate a batch whose acknowledgement was lost', async () => {
    const server = createSyncServer()
    let lose = true
    mock.use(
      http.post(`${URL}/push`, async ({ request }) => {
        const response = await server.handle(request)
        if (lose) {
          lose = false
          return HttpResponse.error() // processed, but the reply never arrives
        }
        return response
      }),
      ...syncHandlers(server, URL),
    )
    const { db, sync } = await client(undefined)
    await db.todos.bulkPut([
      { id: 1, title: 'one' },
      { id: 2, title: 'two' },
    ])
    await vi.waitFor(() => expect(server.pushes).toBe(2), { timeout: 5000 })
    await sync.flush()
    expect(server.batches).toHaveLength(1)
    expect(sync.status.outbox).toBe(0)
  })

  it('stops at a non-retryable 4xx, keeps the outbox, and does not push later batches past it', async () => {
    const server = createSyncServer()
    let refuse = true
    mock.use(
      http.post(`${URL}/push`, async ({ request }) =>
        refuse ? HttpResponse.json({ error: 'forbidden' }, { status: 403 }) : server.handle(request),
      ),
      ...syncHandlers(server, URL),
    )
    const { db, sync, errors } = await client(undefined)
    await db.todos.put({ id: 1, title: 'one' })
    await vi.waitFor(() => expect(errors).toHaveLength(1))
    await db.todos.put({ id: 2, title: 'two' })
    await expect(sync.flush()).rejects.toBeInstanceOf(SyncError)
    expect(errors[0]).toMatchObject({ status: 403, retrying: false })
    expect(sync.status.state).toBe('error')
    expect(await outbox(db, 0)).toBe(2)
    expect(server.batches).toHaveLength(0)
    refuse = false
    sync.resume()
    await vi.waitFor(() => expect(server.batches.map((b) => b.changes[0]!.key)).toEqual([1, 2]))
  })

  it('keeps the outbox intact when the server answers malformed JSON or wrong shapes, then recovers', async () => {
    const server = createSyncServer()
    const replies = ['{not json', JSON.stringify({ acked: 'all' }), JSON.stringify({ acked: [], rejected: [] })]
    mock.use(
      http.post(`${URL}/push`, async ({ request }) => {
        const next = replies.shift()
        if (next === undefined) return server.handle(request)
        return new HttpResponse(next, { headers: { 'content-type': 'application/json' } })
      }),
      ...syncHandlers(server, URL),
    )
    const { db, sync, errors } = await client(undefined)
    await db.todos.put({ id: 1, title: 'one' })
    await vi.waitFor(() => expect(server.batches).toHaveLength(1), { timeout: 5000 })
    expect(errors.map((error) => error.message)).toEqual([
      expect.stringMatching(/malformed JSON/),
      expect.stringMatching(/acked must be a list/),
      expect.stringMatching(/rev 1 were neither acked nor rejected|revs 1 were neither acked nor rejected/),
    ])
    await vi.waitFor(() => expect(sync.status.outbox).toBe(0))
  })

  it('keeps what was committed offline across a restart and pushes it when the server is back', async () => {
    const server = createSyncServer({ failureRate: 1 })
    const first = await client(server)
    await first.db.todos.put({ id: 1, title: 'written while the server is down' })
    await vi.waitFor(() => expect(first.errors.length).toBeGreaterThan(0))
    const name = first.db.name
    first.feed.close()
    first.db.close()
    open.splice(0)
    server.configure({ failureRate: 0 })
    const second = await client(server, {}, name)
    await second.sync.flush()
    expect(server.value('todos', 1)).toEqual({ id: 1, title: 'written while the server is down' })
    expect(server.batches).toHaveLength(1)
  })
})

describe('sync: remote changes', () => {
  for (const pull of ['poll', 'stream'] as const) {
    it(`applies remote batches (${pull}) with source remote, once each, and never pushes them back`, async () => {
      const server = createSyncServer({ duplicateRate: 1 })
      const { db, sync, events } = await client(server, { pull })
      await db.todos.put({ id: 1, title: 'mine' })
      await sync.flush()
      server.edit([{ type: 'create', table: 'todos', key: 7, value: { id: 7, title: 'another user' } }])
      server.edit([
        {
          type: 'update',
          table: 'todos',
          key: 1,
          value: { id: 1, title: 'edited remotely' },
          changes: { title: 'edited remotely' },
        },
      ])
      await vi.waitFor(() => expect(events.filter((e) => e.source === 'remote')).toHaveLength(2), { timeout: 5000 })
      const remote = events.filter((e) => e.source === 'remote')
      expect(remote.map((e) => [e.type, e.key, e.origin])).toEqual([
        ['create', 7, 'another-user'],
        ['update', 1, 'another-user'],
      ])
      expect(remote[1]!.changes).toEqual({ title: 'edited remotely' })
      expect(await db.todos.get(7)).toEqual({ id: 7, title: 'another user' })
      await sync.flush()
      expect(server.batches).toHaveLength(3)
      expect(sync.status.serverRev).toBe(3)
      expect(sync.status.outbox).toBe(0)
    })
  }

  it('applies the server value of a rejected change, emits corrective events and reports the rejection', async () => {
    const server = createSyncServer({
      reject: (change) =>
        (change.value as Todo | undefined)?.title === 'forbidden' ? 'titles may not be forbidden' : undefined,
    })
    const { db, sync, events, rejections } = await client(server)
    await db.todos.put({ id: 1, title: 'fine' })
    await sync.flush()
    await db.todos.update(1, { title: 'forbidden' })
    await db.todos.put({ id: 2, title: 'forbidden' })
    await sync.flush()
    expect(rejections.map((r) => [r.reason, r.current])).toEqual([
      ['titles may not be forbidden', [{ table: 'todos', key: 1, value: { id: 1, title: 'fine' } }]],
      ['titles may not be forbidden', [{ table: 'todos', key: 2 }]],
    ])
    expect(await db.todos.toArray()).toEqual([{ id: 1, title: 'fine' }])
    const corrections = events.filter((e) => e.source === 'remote')
    expect(corrections.map((e) => [e.type, e.key])).toEqual([
      ['update', 1],
      ['delete', 2],
    ])
    expect(server.batches).toHaveLength(1)
    expect(sync.status.outbox).toBe(0)
  })

  it('refuses a malformed edit in the test server instead of serving it', () => {
    const server = createSyncServer()
    expect(() => server.edit([{ type: 'update', table: 'todos', key: undefined, value: {} }])).toThrow(TypeError)
    expect(() => server.edit([{ type: 'create', table: 'todos', key: 1 }])).toThrow(/needs a value/)
    expect(server.batches).toHaveLength(0)
  })

  it('rejects malformed remote batches with a sync error and applies nothing', async () => {
    const { db, sync, errors } = await client(undefined)
    mock.use(
      http.get(`${URL}/pull`, () =>
        HttpResponse.json({
          batches: [{ rev: 1, tx: 't', origin: 'x', at: 1, changes: [{ type: 'explode', table: 'todos', key: 1 }] }],
          cursor: '1',
          more: false,
        }),
      ),
      http.post(`${URL}/push`, () => HttpResponse.json({ acked: [], rejected: [] })),
    )
    await expect(sync.flush()).rejects.toBeInstanceOf(SyncError)
    expect(errors[0]!.message).toMatch(/unknown change type explode/)
    expect(await db.todos.count()).toBe(0)
  })
})

describe('sync: soak', () => {
  it('2,000 writes with a 20% injected failure rate: server state equals local state, no duplicates', async () => {
    const server = createSyncServer({ failureRate: 0.1, dropRate: 0.1, duplicateRate: 0.2, random: seeded(42) })
    const { db, sync } = await client(server, { batchSize: 100 })
    let transactions = 0
    for (let i = 0; i < 2000; i++) {
      const id = (i * 7919) % 300
      if (i % 10 === 9) await db.todos.delete(id)
      else await db.todos.put({ id, title: `write ${i}` })
      transactions++
    }
    for (let i = 0; i < 5; i++)
      server.edit([{ type: 'create', table: 'todos', key: 1000 + i, value: { id: 1000 + i, title: 'remote' } }])
    await vi.waitFor(
      async () => {
        expect(sync.status.outbox).toBe(0)
        expect(await db.todos.count()).toBe(server.rows('todos').length)
      },
      { timeout: 60_000, interval: 50 },
    )
    const local = await db.todos.toArray()
    expect(local).toEqual(
      server
        .rows('todos')
        .map((row) => row.value)
        .sort((a, b) => (a as Todo).id - (b as Todo).id),
    )
    // Deletes of missing keys commit nothing; every other transaction is one server batch, once.
    const logged = await db
      .table(LOG_TABLE)
      .filter((row: { source: string }) => row.source === 'local')
      .count()
    expect(server.batches.filter((b) => b.origin !== 'another-user')).toHaveLength(logged)
    expect(logged).toBeLessThanOrEqual(transactions)
    expect(new Set(server.batches.map((b) => b.tx)).size).toBe(server.batches.length)
  }, 90_000)
})

function seeded(seed: number) {
  let state = seed
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0
    return state / 2 ** 32
  }
}
