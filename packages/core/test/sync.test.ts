import Dexie from 'dexie'
import { http, HttpResponse } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { changecast, InvalidOptionsError, SyncError } from '@changecast/core'
import { httpSync, setAsideActions, stream, userSwitching } from '@changecast/core/sync'
import { createSyncServer } from '@changecast/testing'
import { syncHandlers } from '@changecast/testing/msw'
import { LOG_TABLE } from '../src/log/changelog.js'
import { BASE, closeAll, openClient, seeded, until, type Todo } from './sync-helpers.js'

const mock = setupServer()
beforeAll(() => mock.listen({ onUnhandledRequest: 'error' }))
afterAll(() => mock.close())
afterEach(async () => {
  await closeAll()
  mock.resetHandlers()
  mock.events.removeAllListeners()
})

const outbox = (db: Dexie, after: number) => db.table(LOG_TABLE).where(':id').above(after).count()

describe('httpSync: options', () => {
  it('throws a clear error for malformed options, and for the sync option without an adapter', () => {
    expect(() => httpSync({ url: '' })).toThrow(InvalidOptionsError)
    expect(() => httpSync({ url: BASE, pull: 'sometimes' as never })).toThrow(/'pull' must be/)
    expect(() => httpSync({ url: BASE, batchSize: 0.5 })).toThrow(/batchSize/)
    expect(() => httpSync({ url: BASE, backoff: { base: -1 } })).toThrow(/backoff/)
    expect(() => httpSync({ url: BASE, extra: 1 } as never)).toThrow(/Unknown httpSync option 'extra'/)
    const db = new Dexie('options')
    db.version(1).stores({ todos: 'id' })
    expect(() => changecast(db, { sync: { url: BASE } as never })).toThrow(/httpSync\(\{ url \}\)/)
  })

  it("the parts given by import: pull 'stream' as text names the stream import; users and setAside take only theirs", () => {
    expect(() => httpSync({ url: BASE, pull: 'stream' as never })).toThrow(
      /'pull' must be 'poll', false or stream \(from '@changecast\/core\/sync'\)/,
    )
    expect(() => httpSync({ url: BASE, pull: stream })).not.toThrow()
    expect(() => httpSync({ url: BASE, users: setAsideActions as never })).toThrow(/'users' must be userSwitching/)
    expect(() => httpSync({ url: BASE, setAside: userSwitching as never })).toThrow(
      /'setAside' must be setAsideActions/,
    )
    expect(() => httpSync({ url: BASE, users: userSwitching, setAside: setAsideActions })).not.toThrow()
  })

  it('signOut(), discardPending(), retry() and drop() without their part reject with what to add, and nothing runs', async () => {
    const server = createSyncServer()
    const { db, sync } = await openClient({ server, mock, users: undefined, setAside: undefined })
    await db.todos.put({ id: 1, title: 'kept' })
    await sync.flush()
    await expect(sync.signOut()).rejects.toThrow(/signOut\(\) needs httpSync\(\{ users: userSwitching \}\)/)
    await expect(sync.discardPending()).rejects.toThrow(
      /discardPending\(\) needs httpSync\(\{ users: userSwitching \}\)/,
    )
    await expect(sync.retry({ kind: 'push', rev: 1 })).rejects.toThrow(
      /retry\(\) needs httpSync\(\{ setAside: setAsideActions \}\)/,
    )
    await expect(sync.drop({ kind: 'push', rev: 1 })).rejects.toThrow(InvalidOptionsError)
    expect(await db.todos.get(1)).toEqual({ id: 1, title: 'kept' })
    expect(sync.status.state).toBe('idle')
  })
})

describe('sync: push', () => {
  it('pushes committed transactions with an Idempotency-Key and empties the outbox once acknowledged', async () => {
    const server = createSyncServer()
    const keys: string[] = []
    mock.events.on('request:start', ({ request }) => {
      const key = request.headers.get('idempotency-key')
      if (key) keys.push(key)
    })
    const { db, sync } = await openClient({ server, mock })
    await db.todos.put({ id: 1, title: 'one' })
    await db.transaction('rw', db.todos, async () => {
      await db.todos.put({ id: 2, title: 'two' })
      await db.todos.update(1, { done: true })
    })
    await sync.flush()
    expect(server.batches.map((b) => b.changes.map((c) => `${c.type} ${JSON.stringify(c.key)}`))).toEqual([
      ['create 1'],
      ['create 2', 'update 1'],
    ])
    expect(server.value('todos', 1)).toEqual({ id: 1, title: 'one', done: true })
    // The status says what a reader expects: both commits answered, and the client is up to date with revision 2.
    expect(sync.status).toMatchObject({ state: 'idle', outbox: 0, lastSyncedRev: 2, serverRev: 2, leader: true })
    expect(keys.some((key) => /^[\w-]+:1-2$/.test(key))).toBe(true)
  })

  it('sends headers from an async function (auth tokens)', async () => {
    const server = createSyncServer()
    const seen: Array<string | null> = []
    mock.use(
      http.all(`${BASE}/:route`, async ({ request }) => {
        seen.push(request.headers.get('authorization'))
        return server.handle(request)
      }),
    )
    const { db, sync } = await openClient({ headers: () => Promise.resolve({ authorization: 'Bearer t0k3n' }) })
    await db.todos.put({ id: 1, title: 'one' })
    await sync.flush()
    expect(seen.length).toBeGreaterThan(0)
    expect(new Set(seen)).toEqual(new Set(['Bearer t0k3n']))
  })

  it('retries 5xx, 429 and network errors with backoff, showing offline meanwhile, then succeeds', async () => {
    const server = createSyncServer({ failureRate: 1, retryAfter: 0.05 })
    const { db, sync, errors } = await openClient({ server, mock })
    await db.todos.put({ id: 1, title: 'one' })
    await until(() => errors.length >= 2)
    expect(
      errors.every((error) => error.retrying && error.reason === 'http' && [503, 429].includes(error.status!)),
    ).toBe(true)
    expect(sync.status).toMatchObject({ state: 'offline', outbox: 1, lastError: { reason: 'http' } })
    server.configure({ failureRate: 0, dropRate: 1 })
    await until(() => errors.some((error) => error.reason === 'network'))
    server.configure({ dropRate: 0 })
    await until(() => server.batches.length === 1)
    await until(() => sync.status.state === 'idle' && sync.status.outbox === 0)
  })

  it('waits at least as long as Retry-After asks before retrying', async () => {
    const server = createSyncServer({ failureRate: 1, retryAfter: 0.3 })
    const times: number[] = []
    mock.use(
      http.post(`${BASE}/push`, async ({ request }) => {
        times.push(Date.now())
        if (times.length === 2) server.configure({ failureRate: 0 })
        return server.handle(request)
      }),
      ...syncHandlers(server, BASE),
    )
    const { db } = await openClient({ pull: false })
    await db.todos.put({ id: 1, title: 'one' })
    await until(() => server.batches.length === 1)
    expect(times.length).toBeGreaterThanOrEqual(2)
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(290)
  })

  it('status after eight acknowledged pushes: lastSyncedRev and serverRev both read 8, and count what they say', async () => {
    const server = createSyncServer()
    const { db, sync } = await openClient({ server, mock, pull: 'poll' })
    for (let id = 1; id <= 8; id++) {
      await db.todos.put({ id, title: `todo ${id}` })
      await sync.settled()
    }
    await sync.flush()
    expect(server.batches.map((batch) => batch.rev)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    // lastSyncedRev: the newest local commit the server answered; serverRev: the server
    // revision this client is up to date with — its own eight batches included.
    expect(sync.status).toMatchObject({ outbox: 0, lastSyncedRev: 8, serverRev: 8 })
    server.edit([{ type: 'create', table: 'todos', key: 9, value: { id: 9, title: 'elsewhere' } }])
    await sync.flush()
    expect(sync.status).toMatchObject({ lastSyncedRev: 8, serverRev: 9 })
  })

  it('does not duplicate a batch whose acknowledgement was lost', async () => {
    const server = createSyncServer({ lostReplyRate: 1 })
    const { db, sync } = await openClient({ server, mock })
    await db.todos.bulkPut([
      { id: 1, title: 'one' },
      { id: 2, title: 'two' },
    ])
    await until(() => server.pushes >= 2)
    server.configure({ lostReplyRate: 0 })
    await sync.flush()
    expect(server.batches).toHaveLength(1)
    expect(sync.status.outbox).toBe(0)
  })

  it('stops at a non-retryable 4xx, keeps the outbox, and does not push later batches past it', async () => {
    const server = createSyncServer()
    let refuse = true
    mock.use(
      http.post(`${BASE}/push`, async ({ request }) =>
        refuse ? HttpResponse.json({ error: 'forbidden' }, { status: 403 }) : server.handle(request),
      ),
      ...syncHandlers(server, BASE),
    )
    const { db, sync, errors } = await openClient()
    await db.todos.put({ id: 1, title: 'one' })
    await until(() => errors.length === 1)
    await db.todos.put({ id: 2, title: 'two' })
    await expect(sync.flush()).rejects.toBeInstanceOf(SyncError)
    expect(errors[0]).toMatchObject({ status: 403, retrying: false, reason: 'http' })
    expect(errors[0]!.message).toMatch(/forbidden/)
    expect(sync.status.state).toBe('error')
    expect(await outbox(db, 0)).toBe(2)
    expect(server.batches).toHaveLength(0)
    refuse = false
    sync.resume()
    await until(() => JSON.stringify(server.batches.map((b) => b.changes[0]!.key)) === '[1,2]')
  })

  it('keeps the outbox intact when the server answers malformed JSON or wrong shapes, then recovers', async () => {
    const server = createSyncServer()
    const replies = [
      '{not json',
      JSON.stringify({ epoch: 'e', acked: 'all', rejected: [] }),
      JSON.stringify({ epoch: 'e', acked: [], rejected: [] }),
      JSON.stringify({
        epoch: 'e',
        acked: [
          { rev: 1, serverRev: 1 },
          { rev: 1, serverRev: 2 },
        ],
        rejected: [],
      }),
      JSON.stringify({ epoch: 'e', acked: [{ rev: 7, serverRev: 1 }], rejected: [] }),
    ]
    mock.use(
      http.post(`${BASE}/push`, async ({ request }) => {
        const next = replies.shift()
        if (next === undefined) return server.handle(request)
        return new HttpResponse(next, { headers: { 'content-type': 'application/json' } })
      }),
      ...syncHandlers(server, BASE),
    )
    const { db, sync, errors } = await openClient()
    await db.todos.put({ id: 1, title: 'one' })
    await until(() => server.batches.length === 1)
    expect(errors.map((error) => [error.reason, error.message])).toEqual([
      ['protocol', expect.stringMatching(/malformed JSON/)],
      ['protocol', expect.stringMatching(/acked must be a list/)],
      ['protocol', expect.stringMatching(/revs 1 were neither acked nor rejected/)],
      ['protocol', expect.stringMatching(/rev 1 is answered twice/)],
      ['protocol', expect.stringMatching(/rev 7 was not pushed/)],
    ])
    await until(() => sync.status.outbox === 0)
  })

  it('keeps what was committed offline across a restart and pushes it when the server is back', async () => {
    const server = createSyncServer({ failureRate: 1 })
    const first = await openClient({ server, mock })
    await first.db.todos.put({ id: 1, title: 'written while the server is down' })
    await until(() => first.errors.length > 0)
    first.close()
    server.configure({ failureRate: 0 })
    const second = await openClient({ name: first.db.name })
    await second.sync.flush()
    expect(server.value('todos', 1)).toEqual({ id: 1, title: 'written while the server is down' })
    expect(server.batches).toHaveLength(1)
  })

  it('flush() retries retryable failures up to its attempts, and rejects after them', async () => {
    const server = createSyncServer()
    const { db, sync } = await openClient({ server, mock })
    await sync.flush() // the first snapshot
    server.configure({ failureRate: 1 })
    await db.todos.put({ id: 1, title: 'one' })
    const pushesBefore = server.pushes
    await expect(sync.flush({ attempts: 2 })).rejects.toMatchObject({ retrying: true })
    expect(server.pushes - pushesBefore).toBeGreaterThanOrEqual(2)
    server.configure({ failureRate: 0.5, random: seeded(3) })
    await sync.flush({ attempts: 20 })
    expect(server.batches).toHaveLength(1)
  })
  it('pushes what was committed, whatever a subscriber tries to do to the events', async () => {
    const server = createSyncServer()
    const { db, feed, sync } = await openClient({ server, mock })
    const refused: unknown[] = []
    feed.on('todos', (event) => {
      for (const part of [event, event.value, event.previous, event.changes] as Array<Record<string, unknown>>) {
        try {
          if (part) part.title = 'changed by a subscriber'
        } catch (error) {
          refused.push(error)
        }
      }
    })
    await db.todos.put({ id: 1, title: 'one' })
    await db.todos.update(1, { done: true })
    await db.todos.bulkPut([
      { id: 2, title: 'two' },
      { id: 2, title: 'two again' },
    ])
    await sync.flush()
    expect(refused.length).toBeGreaterThan(0)
    expect(refused.every((error) => error instanceof TypeError)).toBe(true)
    expect(server.value('todos', 1)).toEqual({ id: 1, title: 'one', done: true })
    expect(server.value('todos', 2)).toEqual({ id: 2, title: 'two again' })
    expect(server.batches.flatMap((b) => b.changes.map((c) => (c.value as Todo).title))).toEqual([
      'one',
      'one',
      'two',
      'two again',
    ])
  })
})

describe('sync: remote changes', () => {
  for (const [mode, pull] of [
    ['poll', 'poll'],
    ['stream', stream],
  ] as const) {
    it(`applies remote batches (${mode}) with source remote, once each, and never pushes them back`, async () => {
      const server = createSyncServer({ duplicateRate: 1 })
      const { db, sync, events } = await openClient({ server, mock, pull })
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
      await until(() => events.filter((e) => e.source === 'remote').length === 2)
      const remote = events.filter((e) => e.source === 'remote')
      expect(remote.map((e) => [e.type, e.key, e.origin])).toEqual([
        ['create', 7, 'another-user'],
        ['update', 1, 'another-user'],
      ])
      expect(remote[1]!.changes).toEqual({ title: 'edited remotely' })
      expect(await db.todos.get(7)).toEqual({ id: 7, title: 'another user' })
      await sync.flush()
      expect(server.batches).toHaveLength(3)
      expect(sync.status).toMatchObject({ serverRev: 3, outbox: 0 })
      expect(events.filter((e) => e.source === 'remote')).toHaveLength(2)
    })
  }

  it('applies the server value of a rejected change, emits corrective events and keeps the rejection', async () => {
    const server = createSyncServer({
      reject: (change) =>
        (change.value as Todo | undefined)?.title === 'forbidden' ? 'titles may not be forbidden' : undefined,
    })
    const { db, sync, events, rejections } = await openClient({ server, mock })
    await db.todos.put({ id: 1, title: 'fine' })
    await sync.flush()
    await db.todos.update(1, { title: 'forbidden' })
    await db.todos.put({ id: 2, title: 'forbidden' })
    await sync.flush()
    expect(rejections.map((r) => [r.rev, r.reason, r.current])).toEqual([
      [2, 'titles may not be forbidden', [{ table: 'todos', key: 1, value: { id: 1, title: 'fine' } }]],
      [3, 'titles may not be forbidden', [{ table: 'todos', key: 2 }]],
    ])
    expect(await db.todos.toArray()).toEqual([{ id: 1, title: 'fine' }])
    const corrections = events.filter((e) => e.source === 'remote')
    expect(corrections.map((e) => [e.type, e.key])).toEqual([
      ['update', 1],
      ['delete', 2],
    ])
    expect(server.batches).toHaveLength(1)
    expect(sync.status).toMatchObject({ outbox: 0, rejections: 2 })
    // The inbox survives until dismissed.
    expect((await sync.rejections()).map((r) => r.rev)).toEqual([2, 3])
    expect(await sync.settled(2)).toEqual({ rev: 2, status: 'rejected', reason: 'titles may not be forbidden' })
    expect(await sync.settled(1)).toEqual({ rev: 1, status: 'acked' })
    await sync.dismiss(2)
    expect((await sync.rejections()).map((r) => r.rev)).toEqual([3])
    await until(() => sync.status.rejections === 1)
  })

  it('settled() resolves once the server answered the newest local commit', async () => {
    const server = createSyncServer({ latency: 30 })
    const { db, sync } = await openClient({ server, mock })
    await db.todos.put({ id: 1, title: 'one' })
    await db.todos.put({ id: 2, title: 'two' })
    expect(await sync.settled()).toEqual({ rev: 2, status: 'acked' })
    expect(server.batches).toHaveLength(2)
    await expect(sync.settled(0)).rejects.toThrow(InvalidOptionsError)
  })

  it('refuses a malformed edit in the test server instead of serving it', () => {
    const server = createSyncServer()
    expect(() => server.edit([{ type: 'update', table: 'todos', key: undefined, value: {} }])).toThrow(TypeError)
    expect(() => server.edit([{ type: 'create', table: 'todos', key: 1 }])).toThrow(/needs a value/)
    expect(server.batches).toHaveLength(0)
  })

  it('honours pull: false (pushes, never pulls or streams)', async () => {
    const server = createSyncServer()
    const routes: string[] = []
    mock.events.on('request:start', ({ request }) => routes.push(new URL(request.url).pathname.split('/').pop()!))
    const { db, sync } = await openClient({ server, mock, pull: false })
    server.edit([{ type: 'create', table: 'todos', key: 9, value: { id: 9, title: 'remote' } }])
    await db.todos.put({ id: 1, title: 'one' })
    await sync.flush()
    expect(new Set(routes)).toEqual(new Set(['push']))
    expect(await db.todos.get(9)).toBeUndefined()
  })
})

describe('sync: soak', () => {
  it('2,000 writes with injected failures, lost replies and duplicates: server state equals local state, no duplicates', async () => {
    const server = createSyncServer({
      failureRate: 0.1,
      dropRate: 0.05,
      lostReplyRate: 0.1,
      duplicateRate: 0.2,
      random: seeded(42),
    })
    const { db, sync } = await openClient({ server, mock, batchSize: 100 })
    for (let i = 0; i < 2000; i++) {
      const id = (i * 7919) % 300
      if (i % 10 === 9) await db.todos.delete(id)
      else await db.todos.put({ id, title: `write ${i}` })
    }
    for (let i = 0; i < 5; i++)
      server.edit([{ type: 'create', table: 'todos', key: 1000 + i, value: { id: 1000 + i, title: 'remote' } }])
    await until(
      async () => {
        expect(sync.status.outbox).toBe(0)
        expect(await db.todos.count()).toBe(server.rows('todos').length)
      },
      { timeout: 60_000 },
    )
    server.configure({ failureRate: 0, dropRate: 0, lostReplyRate: 0 })
    await sync.flush()
    const local = await db.todos.toArray()
    expect(local).toEqual(
      server
        .rows('todos')
        .map((row) => row.value)
        .sort((a, b) => (a as Todo).id - (b as Todo).id),
    )
    const logged = await db
      .table(LOG_TABLE)
      .filter((row: { source: string }) => row.source === 'local')
      .count()
    expect(server.batches.filter((b) => b.origin !== 'another-user')).toHaveLength(logged)
    expect(new Set(server.batches.map((b) => b.tx)).size).toBe(server.batches.length)
  }, 180_000)
})
