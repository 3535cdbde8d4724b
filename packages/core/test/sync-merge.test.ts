// Field-level merge (issue 27): what the capture records of field updates, what the client
// pushes, and how it rebases pending writes over server values. Against the in-memory server.
import Dexie, { add, remove, replacePrefix, type Table } from 'dexie'
import { http } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { changecast, type ChangeEvent } from '@changecast/core'
import { httpSync, stream } from '@changecast/core/sync'
import { createSyncServer, type SyncServer } from '@changecast/testing'
import { syncHandlers } from '@changecast/testing/msw'
import { LOG_TABLE, type LogRow } from '../src/log/changelog.js'
import { toPushBatch } from '../src/sync/push.js'
import { applyPatch, MergeError, mergeValue, namesItsPaths } from '../src/sync/merge.js'
import { BASE, closeAll, openClient, until, type Client } from './sync-helpers.js'

const mock = setupServer()
beforeAll(() => mock.listen({ onUnhandledRequest: 'error' }))
afterAll(() => mock.close())
afterEach(async () => {
  await closeAll()
  mock.resetHandlers()
})

interface Task {
  id: number
  title: string
  status?: string
  votes?: number
  tags?: string[]
  owner?: { name: string; city?: string }
}
type TaskDb = Dexie & { tasks: Table<Task, number> }

let databases = 0
async function openTasks(): Promise<{ db: TaskDb; events: ChangeEvent[]; rows(): Promise<LogRow[]> }> {
  const db = new Dexie(`merge-capture-${++databases}`) as TaskDb
  db.version(1).stores({ tasks: 'id' })
  const feed = changecast(db)
  const events: ChangeEvent[] = []
  feed.on('tasks', (event) => events.push(event as ChangeEvent))
  await db.open()
  return { db, events, rows: () => db.table<LogRow, number>(LOG_TABLE).toArray() }
}

describe('capture: a field update carries its Dexie modifications (ops)', () => {
  it('update(), modify(), bulkUpdate() and upsert() are field updates; put() stores a whole value', async () => {
    const { db, events, rows } = await openTasks()
    await db.tasks.put({ id: 1, title: 'a', votes: 1, tags: ['x'] })
    await db.tasks.update(1, { title: 'b', votes: add(2), tags: add(['y']) })
    await db.tasks
      .where('id')
      .equals(1)
      .modify({ title: replacePrefix('b', 'c') })
    await db.tasks
      .where('id')
      .equals(1)
      .modify((task) => void (task.status = 'open'))
    await db.tasks.bulkUpdate([{ key: 1, changes: { status: 'done' } }])
    await db.tasks.upsert(1, { votes: remove(1) })
    await db.tasks.put({ id: 1, title: 'whole' })
    await until(() => events.length === 7)
    expect(events.map((event) => [event.type, event.ops])).toEqual([
      ['create', undefined],
      ['update', { votes: { add: 2 }, tags: { add: ['y'] } }],
      ['update', { title: { replacePrefix: ['b', 'c'] } }],
      ['update', {}],
      ['update', {}],
      ['update', { votes: { remove: 1 } }],
      ['update', undefined],
    ])
    const logged = (await rows()).flatMap((row) => (row.changes ?? []).map((change) => change.ops))
    expect(logged).toEqual(events.map((event) => event.ops))
    // Values as Dexie computes them, unchanged by the capture.
    expect(await db.tasks.get(1)).toEqual({ id: 1, title: 'whole' })
    db.close()
  })

  it('each event of a modify() of many rows owns its copy of the ops', async () => {
    const { db, events } = await openTasks()
    await db.tasks.bulkPut([
      { id: 1, title: 'a', votes: 0 },
      { id: 2, title: 'b', votes: 0 },
    ])
    await db.tasks.toCollection().modify({ votes: add(1) })
    await until(() => events.length === 4)
    const [first, second] = events.slice(2)
    expect(first!.ops).toEqual({ votes: { add: 1 } })
    expect(first!.ops).not.toBe(second!.ops)
    db.close()
  })
})

describe('pushing: a field update goes as a patch', () => {
  const row = (change: LogRow['changes'][number]): LogRow => ({
    rev: 1,
    tx: 't',
    origin: 'o',
    source: 'local',
    at: 1,
    changes: [change],
  })
  const update = (value: unknown, changes: Record<string, unknown>, ops?: Record<string, never> | object) =>
    row({
      type: 'update',
      table: 'tasks',
      key: 1,
      value,
      changes,
      ...(ops ? { ops } : {}),
    } as LogRow['changes'][number])

  it('names the changed paths and the operations (a path an operation made is applied as the operation)', () => {
    const [change] = toPushBatch(
      update(
        { id: 1, title: 'b', votes: 3, owner: { name: 'Ann' } },
        { title: 'b', votes: 3, 'owner.city': undefined },
        {
          votes: { add: 2 },
        },
      ),
    ).changes
    expect(change).toMatchObject({ patch: ['title', 'votes', 'owner.city'], ops: { votes: { add: 2 } } })
  })

  it('sends a whole value for put(), and when the whole value was replaced', () => {
    const plain = toPushBatch(update({ id: 1, title: 'b' }, { title: 'b' })).changes[0]!
    expect(plain.patch).toBeUndefined()
    const root = toPushBatch(update({ id: 1, title: 'b' }, { '': { id: 1, title: 'b' } }, {})).changes[0]!
    expect(root.patch).toBeUndefined()
    expect(toPushBatch(update({ id: 1, title: 'b' }, { title: 'b' }, {})).changes[0]!.patch).toEqual(['title'])
  })
})

describe('mergeValue: a server takes a patch whose paths could name two places as a whole value', () => {
  it('a property name with a dot, or a removed path whose object is not in the value', () => {
    const change = (value: unknown, patch: string[]) => ({ type: 'update' as const, table: 't', key: 1, value, patch })
    expect(namesItsPaths(change({ id: 1, a: { b: 1 } }, ['a.b']))).toBe(true)
    // `{"a.b": 1}`: is `a.b` that property or `b` inside `a`? The sent value decides nothing.
    expect(mergeValue({ id: 1, x: 1 }, change({ id: 1, 'a.b': 1 }, ['a.b']))).toEqual({ id: 1, 'a.b': 1 })
    // A removed `x.y` whose `x` is not an object in the value: maybe a property named `x.y`.
    expect(namesItsPaths(change({ id: 1 }, ['x.y']))).toBe(false)
    expect(mergeValue({ id: 1, 'x.y': 2, z: 3 }, change({ id: 1 }, ['x.y']))).toEqual({ id: 1 })
    // Removed at the top, or inside an object that is there: clear.
    expect(mergeValue({ id: 1, n: 1, o: { p: 1, q: 2 }, z: 3 }, change({ id: 1, o: { q: 2 } }, ['n', 'o.p']))).toEqual({
      id: 1,
      o: { q: 2 },
      z: 3,
    })
  })
})

describe('applyPatch', () => {
  it('sets, removes and creates along paths; refuses a path through a non-object and an operation on another type', () => {
    expect(applyPatch({ a: 1, b: { c: 2 } }, { a: 5, b: { d: 3 } }, ['a', 'b.c', 'b.d', 'x.y'])).toEqual({
      a: 5,
      b: { d: 3 },
    })
    expect(() => applyPatch({ a: 'text' }, { a: { b: 1 } }, ['a.b'])).toThrow(MergeError)
    expect(() => applyPatch({ a: [1] }, {}, [], { a: { add: 1 } })).toThrow(/a is not a number here/)
    expect(() => applyPatch({ a: 1 }, {}, [], { a: { add: ['x'] } })).toThrow(/a is not a list here/)
    expect(applyPatch({}, {}, [], { n: { add: 2 }, l: { add: ['b', 'a'] }, m: { remove: 1 } })).toEqual({
      n: 2,
      l: ['a', 'b'],
      m: -1,
    })
    expect(
      applyPatch({ s: 'pre-x', t: 7 }, {}, [], {
        s: { replacePrefix: ['pre-', ''] },
        t: { replacePrefix: ['7', '8'] },
      }),
    ).toEqual({
      s: 'x',
      t: 7,
    })
    // `__proto__` is data, never the prototype.
    const target = applyPatch({}, JSON.parse('{"__proto__": {"polluted": true}}'), ['__proto__.polluted'])
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined()
    expect(Object.getPrototypeOf(target)).toBe(Object.prototype)
  })
})

type TaskClient = Client & { db: Client['db'] & { tasks: Table<Task, number> } }

describe('sync: concurrent field edits merge', () => {
  async function two(server: SyncServer, offline: Set<string>) {
    mock.use(
      http.all(`${BASE}/:client/:route`, async ({ request, params }) =>
        offline.has(String(params.client)) ? Response.error() : server.handle(request),
      ),
    )
    const open = async (name: string) => {
      const client = (await openClient({ name, url: `${BASE}/${name}` })) as TaskClient
      return client
    }
    return [await open(`merge-a-${++databases}`), await open(`merge-b-${++databases}`)] as const
  }

  it('two clients edit different fields offline; online again, both edits are everywhere', async () => {
    const server = createSyncServer()
    const offline = new Set<string>()
    const [a, b] = await two(server, offline)
    await a.db.todos.put({ id: 1, title: 'Plan' })
    await a.sync.flush()
    await until(async () => (await b.db.todos.get(1))?.title === 'Plan')
    offline.add(a.db.name).add(b.db.name)
    await a.db.todos.update(1, { done: true })
    await b.db.todos.update(1, { title: 'Plan v2' })
    offline.clear()
    await a.sync.flush()
    await b.sync.flush()
    await a.sync.flush()
    const merged = { id: 1, title: 'Plan v2', done: true }
    expect(server.value('todos', 1)).toEqual(merged)
    await until(async () => JSON.stringify(await a.db.todos.get(1)) === JSON.stringify(merged))
    await until(async () => JSON.stringify(await b.db.todos.get(1)) === JSON.stringify(merged))
  })

  it('a write waiting for its answer keeps its field and its increment while other clients’ changes arrive (rebase), and ends on the merged value', async () => {
    const server = createSyncServer()
    const gate = { open: () => {}, opened: Promise.resolve() }
    let holding = false
    mock.use(
      http.post(`${BASE}/a/push`, async ({ request }) => {
        if (holding) await gate.opened
        return server.handle(request)
      }),
      ...syncHandlers(server, `${BASE}/a`),
      ...syncHandlers(server, `${BASE}/b`),
    )
    const a = await openClient({ url: `${BASE}/a`, pull: stream })
    const b = await openClient({ url: `${BASE}/b` })
    await a.db.todos.put({ id: 1, title: 'Plan', done: false })
    await a.sync.flush()
    await b.sync.flush()
    await until(async () => (await b.db.todos.get(1)) !== undefined)
    // A's next push reaches the server only when the gate opens; its stream goes on.
    holding = true
    gate.opened = new Promise((resolve) => (gate.open = resolve))
    const seen: unknown[] = []
    a.feed.on('todos', (event) => seen.push(event.value))
    await a.db.todos.update(1, { done: true })
    void a.sync.flush()
    await b.db.todos.update(1, { title: 'Plan v2' })
    await b.sync.flush()
    await until(async () => (await a.db.todos.get(1))?.title === 'Plan v2')
    // The pending field stayed on top: the UI never showed `done: false` again.
    expect(await a.db.todos.get(1)).toEqual({ id: 1, title: 'Plan v2', done: true })
    expect(seen.every((value) => (value as { done?: boolean }).done === true)).toBe(true)
    holding = false
    gate.open()
    await a.sync.flush()
    await b.sync.flush()
    expect(server.value('todos', 1)).toEqual({ id: 1, title: 'Plan v2', done: true })
    await until(async () => (await b.db.todos.get(1))?.done === true)
    expect(await a.db.todos.get(1)).toEqual({ id: 1, title: 'Plan v2', done: true })
  })
})

describe('sync: a pending increment stays on top of incoming ones', () => {
  it('a held add(1) over another client’s add(5) shows +6 at once, and the server ends on +6', async () => {
    const server = createSyncServer()
    let release!: () => void
    let held: Promise<void> | undefined
    mock.use(
      http.post(`${BASE}/a/push`, async ({ request }) => {
        if (held) await held
        return server.handle(request)
      }),
      ...syncHandlers(server, `${BASE}/a`),
      ...syncHandlers(server, `${BASE}/b`),
    )
    type Counter = { id: number; title: string; votes: number }
    const a = await openClient({ url: `${BASE}/a`, pull: stream })
    const b = await openClient({ url: `${BASE}/b` })
    const counters = (client: Client) => client.db.todos as unknown as Table<Counter, number>
    await counters(a).put({ id: 1, title: 'c', votes: 0 })
    await a.sync.flush()
    await until(async () => (await b.db.todos.get(1)) !== undefined)
    held = new Promise((resolve) => (release = resolve))
    await counters(a).update(1, { votes: add(1) })
    void a.sync.flush()
    await counters(b).update(1, { votes: add(5) })
    await b.sync.flush()
    await until(async () => (await counters(a).get(1))?.votes === 6)
    held = undefined
    release()
    await a.sync.flush()
    await b.sync.flush()
    expect((server.value('todos', 1) as Counter).votes).toBe(6)
    await until(async () => (await counters(b).get(1))?.votes === 6)
    expect((await counters(a).get(1))?.votes).toBe(6)
  })
})

describe('sync: Dexie modifications count on the server', () => {
  it('50 concurrent add(1) from each of two clients make +100 everywhere; pending increments stay on top of incoming ones', async () => {
    const server = createSyncServer()
    mock.use(...syncHandlers(server, `${BASE}/a`), ...syncHandlers(server, `${BASE}/b`))
    const open = async (name: string) => {
      const db = new Dexie(`${name}-${++databases}`) as TaskDb
      db.version(1).stores({ tasks: 'id' })
      const feed = changecast(db, {
        sync: httpSync({ url: `${BASE}/${name}`, pull: 'poll', interval: 20, backoff: { base: 5, cap: 40 } }),
      })
      await db.open()
      return { db, feed }
    }
    const a = await open('a')
    const b = await open('b')
    try {
      await a.db.tasks.put({ id: 1, title: 'counter', votes: 0 })
      await a.feed.sync!.flush()
      await until(async () => (await b.db.tasks.get(1)) !== undefined)
      const clicks = (db: TaskDb) =>
        (async () => {
          for (let i = 0; i < 50; i++) await db.tasks.update(1, { votes: add(1) })
        })()
      await Promise.all([clicks(a.db), clicks(b.db)])
      for (let round = 0; round < 3; round++) {
        await a.feed.sync!.flush()
        await b.feed.sync!.flush()
      }
      expect((server.value('tasks', 1) as Task).votes).toBe(100)
      await until(async () => (await a.db.tasks.get(1))?.votes === 100 && (await b.db.tasks.get(1))?.votes === 100)
    } finally {
      a.feed.close()
      b.feed.close()
      a.db.close()
      b.db.close()
      await Dexie.delete(a.db.name)
      await Dexie.delete(b.db.name)
    }
  })

  it('a merge the server refuses (an increment of a text) is rejected unmergeable, and the client takes the server value', async () => {
    const server = createSyncServer()
    mock.use(...syncHandlers(server, BASE))
    const a = await openClient({ url: BASE })
    await a.db.todos.put({ id: 1, title: 'x' })
    await a.sync.flush()
    server.edit([{ type: 'update', table: 'todos', key: 1, value: { id: 1, title: 'x', done: 'maybe' } }])
    await a.db.todos.update(1, { done: add(1) as unknown as boolean })
    await a.sync.flush()
    await until(() => a.rejections.length === 1)
    expect(a.rejections[0]).toMatchObject({ code: 'unmergeable' })
    await until(async () => (await a.db.todos.get(1))?.done === ('maybe' as unknown as boolean))
  })
})

describe("the in-memory server's merge option", () => {
  it("`merge: { table: 'replace' }` stores an update sent as a patch whole; other tables merge", async () => {
    const server = createSyncServer({ merge: { cards: 'replace' } })
    const push = async (rev: number, table: string) => {
      const response = await server.handle(
        new Request(`${BASE}/push`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            v: 2,
            clientId: 'c',
            batches: [
              {
                rev,
                tx: `c.${rev}`,
                at: 1,
                changes: [{ type: 'update', table, key: 1, value: { id: 1, n: 2 }, patch: ['n'] }],
              },
            ],
          }),
        }),
      )
      return (await response.json()) as { acked: unknown[] }
    }
    server.edit([
      { type: 'create', table: 'cards', key: 1, value: { id: 1, n: 1, title: 'server' } },
      { type: 'create', table: 'notes', key: 1, value: { id: 1, n: 1, title: 'server' } },
    ])
    expect((await push(1, 'cards')).acked).toHaveLength(1)
    expect((await push(2, 'notes')).acked).toHaveLength(1)
    expect(server.value('cards', 1)).toEqual({ id: 1, n: 2 })
    expect(server.value('notes', 1)).toEqual({ id: 1, n: 2, title: 'server' })
  })
})
