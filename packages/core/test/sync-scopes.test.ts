// Scopes against the in-memory server of @changecast/testing: the seeded scenario of
// scopes.ts (CONVERGENCE_SEEDS runs more seeds), and the removal marking.
import Dexie, { liveQuery } from 'dexie'
import { http } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createSyncServer } from '@changecast/testing'
import { changecast, ChangecastError, type ChangeEvent, type ResyncInfo } from '../src/index.js'
import { LOG_TABLE, type LogRow } from '../src/log/changelog.js'
import { writeChanges, type EntityChange } from '../src/sync/context.js'
import { seedsToRun } from './convergence.js'
import { SCOPE_FAULTS, scopeOfTask, scopesScenario, type OpenScopedTarget } from './scopes.js'
import { syncHandlers } from '@changecast/testing/msw'
import { BASE, closeAll, installBrowserGlobals, openClient, until, type Todo } from './sync-helpers.js'
import { stream } from '@changecast/core/sync'

const mock = setupServer()
beforeAll(() => mock.listen({ onUnhandledRequest: 'error' }))
afterAll(() => mock.close())
afterEach(async () => {
  await closeAll()
  mock.resetHandlers()
})

const inMemory: OpenScopedTarget = (random, members) => {
  const server = createSyncServer({
    random,
    ...SCOPE_FAULTS,
    heartbeat: 50,
    scopeOf: scopeOfTask,
    scopes: (request) => ({ read: members(request.headers.get('x-user') ?? '') }),
  })
  return Promise.resolve({
    handle: (request) => server.handle(request),
    configure: (faults) => server.configure(faults),
    edit: (changes) => Promise.resolve(void server.edit(changes, 'backend')),
    compact: () => Promise.resolve(server.compact()),
    rows: () => Promise.resolve(server.rows('tasks').map((row) => row.value as never)),
    close: () => Promise.resolve(server.close()),
  })
}

describe('scopes: each client holds exactly its user’s projects, and never sees another’s (seeded)', () => {
  for (const seed of seedsToRun()) {
    it(`seed ${seed}`, () => scopesScenario(seed, inMemory, mock), 180_000)
  }
})

describe('scopes on the client', () => {
  type Item = Todo & { list: string }
  const scoped = (members: Record<string, string[]>) =>
    createSyncServer({
      scopeOf: ({ value }) => (value as Item).list,
      scopes: (request) => ({ read: members[request.headers.get('x-user') ?? ''] ?? [] }),
    })
  const item = (id: number, list: string): Item => ({ id, title: `item ${id}`, list })

  it('loads a snapshot in pages, with progress in the status, and keeps the outbox through it', async () => {
    const server = scoped({ ann: ['list:a'] })
    // Several pages of list:a (a page holds 2,500).
    const rows = Array.from({ length: 12_000 }, (_, i) => item(i + 1, i % 3 === 0 ? 'list:b' : 'list:a'))
    server.edit(rows.map((value) => ({ type: 'create', table: 'todos', key: value.id, value })))
    mock.use(...syncHandlers(server, BASE))
    const name = `bootstrap-${Date.now()}`
    // Written before sync ever ran: in the outbox when the snapshot loads.
    const offline = await openClient({ name, url: `${BASE}/nowhere`, pull: false })
    await offline.db.todos.put({ ...item(2, 'list:a'), title: 'mine' })
    offline.close()
    const progress: Array<{ loaded?: number; total?: number }> = []
    const client = await openClient({ name, headers: { 'x-user': 'ann' } })
    client.sync.subscribe(() => {
      const { phase, loaded, total } = client.sync.status
      if (phase === 'bootstrap') progress.push({ loaded, total })
    })
    await client.sync.flush()
    const expected = rows.filter((row) => row.list === 'list:a').length
    expect(progress.at(-1)).toEqual({ loaded: expected, total: expected })
    // More than one page, loaded in order.
    expect(new Set(progress.map((p) => p.loaded)).size).toBeGreaterThan(2)
    expect(client.sync.status.phase).toBeUndefined()
    expect(await client.db.todos.count()).toBe(expected)
    expect(await client.db.todos.get(2)).toMatchObject({ title: 'mine' })
    expect(server.value('todos', 2)).toMatchObject({ title: 'mine' })
    expect(client.sync.status.outbox).toBe(0)
  }, 180_000)

  it('marks deletes of what left the view as removals, not deletes', async () => {
    const members = { ann: ['list:a', 'list:b'] }
    const server = scoped(members)
    const client = await openClient({ server, mock, headers: { 'x-user': 'ann' } })
    server.edit([1, 2, 3].map((id) => ({ type: 'create', table: 'todos', key: id, value: item(id, 'list:a') })))
    await client.sync.flush()
    server.edit([{ type: 'update', table: 'todos', key: 1, value: item(1, 'list:z') }]) // moved out of view
    server.edit([{ type: 'delete', table: 'todos', key: 2 }]) // deleted
    await client.sync.flush()
    members.ann = ['list:b'] // ann leaves list:a: item 3 leaves her view
    await client.sync.flush()
    const deletes = client.events.filter((event) => event.type === 'delete')
    expect(deletes.map((event) => [event.key, event.removed ?? false])).toEqual([
      [1, true],
      [2, false],
      [3, true],
    ])
    expect(await client.db.todos.count()).toBe(0)
  })

  it('a write into a scope it may write but not read is acked with that entity in current, and leaves the client as a removal', async () => {
    const server = createSyncServer({
      scopeOf: ({ value }) => (value as Item).list,
      scopes: () => ({ read: ['list:a'], write: ['list:a', 'list:inbox'] }),
    })
    const client = await openClient({ server, mock, headers: { 'x-user': 'ann' } })
    const replies: unknown[] = []
    mock.events.on('response:mocked', async ({ request, response }) => {
      if (request.url.includes('/push')) replies.push(await response.clone().json())
    })
    await client.db.todos.bulkPut([item(1, 'list:a'), item(2, 'list:inbox')])
    await client.sync.flush()
    mock.events.removeAllListeners()
    expect(replies).toMatchObject([{ acked: [{ rev: 1, current: [{ table: 'todos', key: 2 }] }] }])
    // On the server, in the inbox; here, gone (a removal: it left this client's view).
    expect(server.value('todos', 2)).toEqual(item(2, 'list:inbox'))
    expect(await client.db.todos.toArray()).toEqual([item(1, 'list:a')])
    expect(client.events.filter((event) => event.type === 'delete')).toMatchObject([{ key: 2, removed: true }])
    expect(await client.sync.settled(1)).toMatchObject({ status: 'acked' })
    // Written again (the same rev sent again is acked again the same way): still gone.
    await client.db.todos.put(item(1, 'list:inbox'))
    await client.sync.flush()
    expect(await client.db.todos.count()).toBe(0)
    expect(client.sync.status).toMatchObject({ outbox: 0, setAside: 0 })
  })

  it('scopes that change and come back (A → B → A) before a snapshot loads still load one: what was written under B goes (sim scopes seed 1438)', async () => {
    const members: Record<string, string[]> = { ann: ['list:a'] }
    const server = scoped(members)
    const client = await openClient({ server, mock, headers: { 'x-user': 'ann' } })
    await client.sync.flush()
    // ann gains list:b, writes there; her scopes go back to list:a while the push is answered
    // (before the client pulled once under list:b, so before any snapshot of them).
    members.ann = ['list:a', 'list:b']
    mock.use(
      http.post(`${BASE}/push`, async ({ request }) => {
        const response = await server.handle(request)
        members.ann = ['list:a']
        return response
      }),
    )
    await client.db.todos.put(item(4, 'list:b'))
    await client.sync.flush()
    // The ack was made under list:a and list:b; the pull under list:a again, as the position.
    expect(server.value('todos', 4)).toEqual(item(4, 'list:b'))
    await client.sync.flush()
    expect(await client.db.todos.toArray()).toEqual([])
  })

  it('a stream hello made before an ack arrived is not a log that went back (sim scopes seed 1438)', async () => {
    const server = createSyncServer()
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    let streams = 0
    mock.use(
      http.get(`${BASE}/stream`, async ({ request }) => {
        // The server writes hello now (its head: before the push), the client reads it later.
        const response = await server.handle(request)
        if (++streams === 1) await held
        return response
      }),
      ...syncHandlers(server, BASE),
    )
    const client = await openClient({ pull: stream })
    await until(() => streams === 1)
    await client.db.todos.put({ id: 1, title: 'mine' })
    await until(async () => (await client.sync.settled(1)).status === 'acked')
    release()
    await until(() => streams === 2 || client.sync.status.state === 'idle')
    await client.sync.flush()
    expect(client.errors.map((error) => error.reason)).not.toContain('server-reset')
    expect(await client.db.todos.toArray()).toEqual([{ id: 1, title: 'mine' }])
  })

  it('a scope lost while a write of it is pending: the push is refused, its current says nothing, and the entity leaves the client', async () => {
    const members: Record<string, string[]> = { ann: ['list:a', 'list:b'] }
    const server = scoped(members)
    const client = await openClient({ server, mock, headers: { 'x-user': 'ann' } })
    await client.db.todos.put(item(1, 'list:b'))
    await client.sync.flush()
    client.sync.pause()
    await client.db.todos.update(1, { title: 'renamed while list:b goes' })
    members.ann = ['list:a']
    client.sync.resume()
    await client.sync.flush()
    // What the server holds now is not for ann to see: current names the entity, no value.
    expect(client.rejections).toMatchObject([{ rev: 2, code: 'forbidden' }])
    expect(client.rejections[0]!.current).toEqual([{ table: 'todos', key: 1 }])
    expect(await client.db.todos.toArray()).toEqual([])
    expect(server.value('todos', 1)).toEqual(item(1, 'list:b'))
    expect(client.sync.status).toMatchObject({ outbox: 0, setAside: 0 })
  })

  it('a position older than the compaction loads a new snapshot and fires onResync', async () => {
    const server = scoped({ ann: ['list:a'] })
    const client = await openClient({ server, mock, headers: { 'x-user': 'ann' }, pull: 'poll', interval: 60_000 })
    await client.sync.flush()
    server.edit([{ type: 'create', table: 'todos', key: 1, value: item(1, 'list:a') }])
    server.edit([{ type: 'create', table: 'todos', key: 2, value: item(2, 'list:a') }])
    await client.sync.flush()
    client.sync.pause()
    server.edit([{ type: 'delete', table: 'todos', key: 1 }])
    server.edit([{ type: 'update', table: 'todos', key: 2, value: { ...item(2, 'list:a'), title: 'later' } }])
    server.compact()
    const resyncs: unknown[] = []
    client.feed.onResync((info) => resyncs.push(info))
    client.sync.resume()
    await client.sync.flush()
    expect(resyncs).toEqual([{ reason: 'server-refetch' }])
    expect(await client.db.todos.toArray()).toEqual([{ ...item(2, 'list:a'), title: 'later' }])
  })
})

describe('snapshot writes', () => {
  it('adds the entities of a table that was empty, and puts (with previous values) those that exist after all', async () => {
    const name = `adds-${Date.now()}`
    const db = new Dexie(name)
    db.version(1).stores({ todos: 'id' })
    const feed = changecast(db)
    await db.open()
    try {
      await db.table('todos').put({ id: 1, title: 'there already' })
      const events: ChangeEvent[] = []
      feed.on('todos', (event) => events.push(event))
      const change = (id: number, title: string): EntityChange => ({
        type: 'create',
        table: 'todos',
        key: id,
        id: `todos/${id}`,
        value: { id, title },
      })
      // What a liveQuery shows meanwhile (Dexie's optimistic updates included): never a key twice.
      const seen: Array<Array<{ id: number; title: string }>> = []
      const observing = liveQuery(() => db.table<{ id: number; title: string }>('todos').toArray()).subscribe((rows) =>
        seen.push(rows),
      )
      await until(() => seen.length > 0)
      await db.transaction('rw', 'todos', () =>
        writeChanges(db, [change(1, 'from the snapshot'), change(2, 'new')], new Set(['todos'])),
      )
      await feed.catchUp()
      await until(() => seen.at(-1)?.length === 2)
      observing.unsubscribe()
      for (const rows of seen) expect(new Set(rows.map((row) => row.id)).size).toBe(rows.length)
      expect(seen.at(-1)).toEqual([
        { id: 1, title: 'from the snapshot' },
        { id: 2, title: 'new' },
      ])
      expect(await db.table('todos').toArray()).toEqual([
        { id: 1, title: 'from the snapshot' },
        { id: 2, title: 'new' },
      ])
      expect(events.map(({ type, key, value, previous }) => ({ type, key, value, previous }))).toEqual(
        expect.arrayContaining([
          { type: 'create', key: 2, value: { id: 2, title: 'new' }, previous: undefined },
          {
            type: 'update',
            key: 1,
            value: { id: 1, title: 'from the snapshot' },
            previous: { id: 1, title: 'there already' },
          },
        ]),
      )
      expect(events).toHaveLength(2)
    } finally {
      feed.close()
      db.close()
      await Dexie.delete(name)
    }
  })

  it('records a snapshot page in the changelog without its values: tabs that hear it get its events, one that reads it from the changelog reloads, and since() rejects across it', async () => {
    const browser = installBrowserGlobals()
    try {
      const server = createSyncServer()
      const count = 6_000 // three pages
      server.edit(
        Array.from({ length: count }, (_, i) => ({
          type: 'create' as const,
          table: 'todos',
          key: i + 1,
          value: { id: i + 1, title: `todo ${i + 1}` },
        })),
      )
      mock.use(...syncHandlers(server, BASE))
      const leader = await openClient({ pull: 'poll', interval: 60_000 })
      const name = leader.db.name
      // A tab that hears the snapshot's messages, and one that does not (no tab channel).
      const listening = await openClient({ name, pull: 'poll', interval: 60_000 })
      const deaf = await openClient({ name, pull: 'poll', interval: 60_000, channel: false })
      const resyncs = new Map<unknown, ResyncInfo[]>([leader, listening, deaf].map((tab) => [tab, []]))
      for (const [tab, list] of resyncs) (tab as typeof leader).feed.onResync((info) => list.push(info))
      const before = leader.feed.rev!
      await leader.sync.flush()
      expect(await leader.db.todos.count()).toBe(count)

      const rows = await leader.db.table<LogRow, number>(LOG_TABLE).where(':id').above(before).toArray()
      const pages = rows.filter((row) => row.unlogged !== undefined)
      expect(pages.map((row) => row.unlogged)).toEqual([2500, 2500, 1000])
      for (const row of pages) expect(row).toMatchObject({ source: 'remote', changes: [] })
      expect(JSON.stringify(rows).length).toBeLessThan(2_000)

      // Live: the syncing tab and the tab that listens get every create, with its value.
      for (const tab of [leader, listening]) {
        await until(() => tab.events.filter((event) => event.type === 'create').length === count)
        expect(tab.events.find((event) => event.key === 4321)).toMatchObject({
          type: 'create',
          source: 'remote',
          value: { id: 4321, title: 'todo 4321' },
        })
      }
      // From the changelog: no events for those rows, a resync instead.
      await deaf.feed.catchUp()
      expect(deaf.events.filter((event) => event.type === 'create')).toEqual([])
      expect(resyncs.get(deaf)).toEqual([{ reason: 'server-snapshot' }])
      expect(resyncs.get(leader)).toEqual([])
      expect(resyncs.get(listening)).toEqual([])
      expect(deaf.feed.rev).toBe(leader.feed.rev)

      const error = await leader.feed.since(before).catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(ChangecastError)
      expect(error).toMatchObject({
        code: 'history-unavailable',
        message: expect.stringMatching(/read the tables again/),
      })
      await expect(leader.feed.since(leader.feed.rev!)).resolves.toEqual([])
    } finally {
      await closeAll()
      browser.uninstall()
    }
  }, 180_000)
})
