import Dexie, { type Table } from 'dexie'
import { afterEach, expect, it, vi } from 'vitest'
import type { ChangecastError } from '@changecast/core'
import { changecast, type ChangeBatch, type ChangecastOptions, type ResyncInfo } from '@changecast/core'
import { LOG_TABLE, type LogRow } from '../../src/log/changelog.js'

type Item = { id: number; title?: string; [key: string]: unknown }
type Db = Dexie & { items: Table<Item, number> }

let counter = 0

/**
 * One regression test per capture and delivery defect found in review, named after it. Run
 * in Node (fake-indexeddb) and in Chromium (native IndexedDB).
 */
export function captureDefectsSuite(): void {
  const dbs: Dexie[] = []
  const closers: Array<() => void> = []
  afterEach(async () => {
    closers.splice(0).forEach((close) => close())
    const names = new Set(dbs.map((db) => db.name))
    dbs.splice(0).forEach((db) => db.close())
    await Promise.all([...names].map((name) => Dexie.delete(name)))
    vi.restoreAllMocks()
  })

  const newName = () => `defects-${Date.now()}-${++counter}`

  async function context(name: string, options: ChangecastOptions = {}) {
    const db = new Dexie(name) as Db
    db.version(1).stores({ items: 'id' })
    const feed = changecast(db, options)
    const batches: ChangeBatch[] = []
    const resyncs: ResyncInfo[] = []
    const errors: ChangecastError[] = []
    feed.onBatch((batch) => batches.push(batch))
    feed.onResync((info) => resyncs.push(info))
    feed.onError((error) => errors.push(error))
    dbs.push(db)
    closers.push(() => feed.close())
    await db.open()
    return { db, feed, batches, resyncs, errors, titles: () => batches.flatMap((b) => b.events.map((e) => e.key)) }
  }
  const logRows = (db: Dexie) => db.table<LogRow, number>(LOG_TABLE).where(':id').above(0).toArray()

  it('regression: a value with an own __proto__ property commits without its changelog row', async () => {
    const name = newName()
    const a = await context(name)
    const b = await context(name)
    await a.db.items.put({ id: 1, title: 'a' })
    // Own keys named like Object.prototype's members (JSON.parse makes them): reading them on
    // the previous value must not find the inherited ones (a function, the prototype).
    const tricky = JSON.parse('{"id":1,"title":"a","constructor":"c","__proto__":{"x":1}}') as Item
    await a.db.items.put(tricky)
    const rows = await logRows(a.db)
    expect(rows.map((row) => row.changes.map((change) => change.type))).toEqual([['create'], ['update']])
    const update = a.batches[1]!.events[0]!
    expect(Object.keys(update.changes!).sort()).toEqual(['__proto__', 'constructor'])
    expect(update.changes!.constructor).toBe('c')
    expect(update.changes!['__proto__']).toEqual({ x: 1 })
    // The other tab hears it, and the previous value rebuilt from the changelog is the old one.
    await vi.waitFor(() => expect(b.batches).toHaveLength(2))
    const replayed = (await b.feed.since(1))[0]!.events[0]!
    expect(replayed.previous).toEqual({ id: 1, title: 'a' })
    expect(Object.getPrototypeOf(replayed.previous)).toBe(Object.prototype)
    expect(({} as Record<string, unknown>).x).toBeUndefined()
  })

  it('regression: a changelog row that cannot be written lets its transaction commit (now it aborts it)', async () => {
    const a = await context(newName())
    const proto = globalThis.IDBObjectStore.prototype
    const add = proto.add
    vi.spyOn(proto, 'add').mockImplementation(function (this: IDBObjectStore, ...args: [unknown, IDBValidKey?]) {
      if (this.name === LOG_TABLE) throw new DOMException('refused', 'DataCloneError')
      return add.apply(this, args)
    })
    await expect(a.db.items.put({ id: 1, title: 'never stored' })).rejects.toThrow()
    vi.restoreAllMocks()
    expect(await a.db.items.get(1)).toBeUndefined()
    expect(a.batches).toEqual([])
    expect(a.errors).toEqual([expect.objectContaining({ code: 'log-failed' })])
    expect(a.errors[0]!.message).toMatch(/could not be written .*so the transaction was aborted/)
    await a.db.items.put({ id: 2, title: 'fine' })
    expect(a.titles()).toEqual([2])
  })

  it('regression: after db.delete() and a reopen, revs start at 1 and every tab takes the next commits as duplicates', async () => {
    const name = newName()
    const a = await context(name)
    const b = await context(name)
    for (let id = 1; id <= 3; id++) await a.db.items.put({ id })
    await vi.waitFor(() => expect(b.batches).toHaveLength(3))
    await a.db.delete() // closes every connection, B's too
    await a.db.open()
    await b.db.open()
    await a.db.items.put({ id: 10 })
    await a.db.items.put({ id: 11 })
    expect(a.titles()).toEqual([1, 2, 3, 10, 11])
    await vi.waitFor(() => expect(b.titles()).toEqual([1, 2, 3, 10, 11]))
    expect(a.resyncs).toEqual([{ reason: 'log-reset' }])
    expect(b.resyncs).toEqual([{ reason: 'log-reset' }])
    expect(a.feed.rev).toBe(2)
  })

  it('delivers what other tabs committed while this tab had its database closed, once it reopens', async () => {
    const name = newName()
    const a = await context(name)
    // Without a channel, B learns of A's commits only from the changelog.
    const b = await context(name, { channel: false })
    await a.db.items.put({ id: 1 })
    b.db.close()
    await a.db.items.put({ id: 2 })
    expect(b.titles()).toEqual([])
    await b.db.open()
    await vi.waitFor(() => expect(b.titles()).toEqual([1, 2]))
    expect(b.resyncs).toEqual([])
  })

  it('regression: a tab message with a huge rev makes a tab deliver a false event and ignore its own commits forever', async () => {
    const name = newName()
    const a = await context(name)
    const b = await context(name)
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    await a.db.items.put({ id: 1 })
    await vi.waitFor(() => expect(b.batches).toHaveLength(1))
    const forged = {
      ...a.batches[0]!,
      rev: 1e15,
      tx: 'forged',
      events: a.batches[0]!.events.map((e) => ({ ...e, key: 666, tx: 'forged', rev: 1e15 })),
    }
    const channel = new BroadcastChannel(`changecast:${name}`)
    channel.postMessage({ v: 1, origin: a.feed.origin, seq: 99, batch: forged })
    channel.close()
    await new Promise((resolve) => setTimeout(resolve, 50))
    await b.db.items.put({ id: 2 })
    await a.db.items.put({ id: 3 })
    await vi.waitFor(() => expect(b.titles()).toEqual([1, 2, 3]))
    expect(b.feed.rev).toBe(3)
    expect(b.titles()).not.toContain(666)
    warn.mockRestore()
  })

  it('regression: a forged seq without a changelog silences the real sender forever', async () => {
    const name = newName()
    const a = await context(name, { log: false })
    const b = await context(name, { log: false })
    await a.db.items.put({ id: 1 })
    await vi.waitFor(() => expect(b.batches).toHaveLength(1))
    const channel = new BroadcastChannel(`changecast:${name}`)
    channel.postMessage({ v: 1, origin: a.feed.origin, seq: 1e15, batch: { ...a.batches[0]!, tx: 'forged' } })
    channel.close()
    await vi.waitFor(() => expect(b.batches).toHaveLength(2))
    await a.db.items.put({ id: 2 })
    await vi.waitFor(() => expect(b.titles()).toEqual([1, 1, 2]))
    expect(b.resyncs.length).toBeGreaterThan(0)
  })

  it("regression: an event whose table is '*' escapes the bus's error isolation", async () => {
    const name = newName()
    const a = await context(name)
    const b = await context(name)
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const heard: unknown[] = []
    b.feed.on('*', (event) => heard.push(event))
    await a.db.items.put({ id: 1 })
    await vi.waitFor(() => expect(heard).toHaveLength(1))
    const channel = new BroadcastChannel(`changecast:${name}`)
    const star = { ...a.batches[0]!, rev: 2, events: a.batches[0]!.events.map((e) => ({ ...e, table: '*' })) }
    channel.postMessage({ v: 1, origin: 'elsewhere', seq: 1, batch: { ...star, origin: 'elsewhere' } })
    channel.close()
    await vi.waitFor(() =>
      expect(warn.mock.calls.some(([text]) => /table "\*" is not captured here/.test(String(text)))).toBe(true),
    )
    expect(heard).toHaveLength(1)
    expect(b.errors).toEqual([])
    expect(heard.every((event) => event !== undefined)).toBe(true)
  })

  it('regression: a value with a getter — the event and the changelog say one thing, IndexedDB stores another', async () => {
    const a = await context(newName())
    let reads = 0
    const item = {
      id: 1,
      get title() {
        return `read ${++reads}`
      },
    }
    await a.db.items.put(item)
    const stored = await a.db.items.get(1)
    const event = a.batches[0]!.events[0]!
    const [row] = await logRows(a.db)
    expect(reads).toBe(1)
    expect(stored).toEqual({ id: 1, title: 'read 1' })
    expect(event.value).toEqual(stored)
    expect(row!.changes[0]!.value).toEqual(stored)
  })

  it("regression: update() after a key lookup in another table stored that table's row (Dexie's cache filled by Changecast)", async () => {
    type User = { id: number; name: string; role: string }
    type Setting = { id: number; theme: string; fontSize?: number }
    for (const write of ['update', 'modify'] as const) {
      const db = new Dexie(newName()) as Dexie & { users: Table<User, number>; settings: Table<Setting, number> }
      db.version(1).stores({ users: 'id', settings: 'id' })
      const feed = changecast(db)
      const batches: ChangeBatch[] = []
      feed.onBatch((batch) => batches.push(batch))
      dbs.push(db)
      closers.push(() => feed.close())
      await db.users.put({ id: 1, name: 'alice', role: 'admin' })
      await db.settings.put({ id: 1, theme: 'dark' })
      await db.transaction('rw', db.users, db.settings, async () => {
        await db.users.where(':id').equals(1).primaryKeys() // any ordinary key lookup
        if (write === 'update') await db.settings.update(1, { fontSize: 14 })
        else await db.settings.where('id').equals(1).modify({ fontSize: 14 })
      })
      expect(await db.settings.get(1)).toEqual({ id: 1, theme: 'dark', fontSize: 14 })
      expect(await db.users.get(1)).toEqual({ id: 1, name: 'alice', role: 'admin' })
      // The event and the changelog row (what sync pushes) say what was stored.
      expect(batches[2]!.events).toMatchObject([
        {
          type: 'update',
          table: 'settings',
          key: 1,
          value: { id: 1, theme: 'dark', fontSize: 14 },
          previous: { id: 1, theme: 'dark' },
          changes: { fontSize: 14 },
        },
      ])
      const rows = await logRows(db)
      expect(rows[2]!.changes).toMatchObject([
        { table: 'settings', key: 1, value: { id: 1, theme: 'dark', fontSize: 14 } },
      ])
    }
  })

  it('regression: one subscriber changing an event changed what every other subscriber, tab and the changelog saw', async () => {
    const name = newName()
    const a = await context(name)
    const b = await context(name)
    const seen: unknown[] = []
    const failures: unknown[] = []
    // The first subscriber mutates everything it gets; the second looks afterwards.
    a.feed.on('*', (event) => {
      for (const part of [event, event.value, event.previous, event.changes] as Array<Record<string, unknown>>) {
        if (!part) continue
        try {
          part.title = 'mutated'
        } catch (error) {
          failures.push(error)
        }
      }
    })
    a.feed.on('*', (event) => seen.push(structuredClone(event.value)))
    await a.db.items.bulkPut([
      { id: 1, title: 'a' },
      { id: 1, title: 'b' },
    ])
    await a.db.items.update(1, { title: 'c' })
    expect(failures.length).toBeGreaterThan(0)
    expect(failures.every((error) => error instanceof TypeError)).toBe(true)
    expect(seen).toEqual([
      { id: 1, title: 'a' },
      { id: 1, title: 'b' },
      { id: 1, title: 'c' },
    ])
    expect(a.batches.flatMap((batch) => batch.events.map((e) => (e.previous as Item | undefined)?.title))).toEqual([
      undefined,
      'a',
      'b',
    ])
    expect(await a.db.items.get(1)).toEqual({ id: 1, title: 'c' })
    expect((await logRows(a.db)).flatMap((row) => row.changes.map((c) => (c.value as Item).title))).toEqual([
      'a',
      'b',
      'c',
    ])
    await vi.waitFor(() => expect(b.batches).toHaveLength(2))
    expect(b.batches.flatMap((batch) => batch.events.map((e) => (e.value as Item).title))).toEqual(['a', 'b', 'c'])
  })

  it('regression: hooks and mapToClass set up before changecast(db) were dropped (Dexie rebuilds its tables on stores())', async () => {
    class Thing {
      id!: number
      title?: string
      label(): string {
        return `#${this.id}`
      }
    }
    const run = async (withFeed: boolean) => {
      const db = new Dexie(newName()) as Db
      db.version(1).stores({ items: 'id' })
      const calls: string[] = []
      const reading = (row: Item) => (calls.push('reading'), row)
      db.items.hook('creating', (_key, row) => {
        row.title = 'made by a hook'
      })
      db.items.hook('updating', () => ({ title: 'changed by a hook' }))
      db.items.hook('deleting', (key) => void calls.push(`deleting ${String(key)}`))
      db.items.hook('reading', reading)
      db.items.mapToClass(Thing)
      const feed = withFeed ? changecast(db) : undefined
      const batches: ChangeBatch[] = []
      feed?.onBatch((batch) => batches.push(batch))
      dbs.push(db)
      if (feed) closers.push(() => feed.close())
      await db.items.put({ id: 1 })
      await db.items.update(1, { other: 1 })
      const row = await db.items.get(1)
      await db.items.delete(1)
      return { row, label: (row as Thing | undefined)?.label?.(), calls, batches }
    }
    const plain = await run(false)
    const captured = await run(true)
    expect(plain.row).toEqual({ id: 1, title: 'changed by a hook', other: 1 })
    expect(captured.row).toEqual(plain.row)
    expect(captured.row).toBeInstanceOf(Thing)
    expect(captured.label).toBe('#1')
    expect(captured.calls).toEqual(plain.calls)
    expect(captured.batches.map((b) => b.events.map((e) => [e.type, e.value]))).toEqual([
      [['create', { id: 1, title: 'made by a hook' }]],
      [['update', { id: 1, title: 'changed by a hook', other: 1 }]],
      [['delete', undefined]],
    ])
  })

  it("regression: a hooked put after a modify that wrote nothing reported another table's row as its previous value", async () => {
    type Row = { id: number; from: string; touched?: number }
    const db = new Dexie(newName()) as Dexie & { items: Table<Row, number>; users: Table<Row, number> }
    db.version(1).stores({ items: 'id', users: 'id' })
    db.users.hook('updating', () => ({ touched: 1 }))
    const feed = changecast(db)
    const batches: ChangeBatch[] = []
    feed.onBatch((batch) => batches.push(batch))
    dbs.push(db)
    closers.push(() => feed.close())
    await db.items.put({ id: 8, from: 'items' })
    await db.transaction('rw', db.items, db.users, async () => {
      // Dexie reads items 8 into its transaction cache and, writing nothing, keeps it there;
      // its hooks then take that row for users 8's existing value (Dexie's own behaviour).
      await db.items.update(8, () => false)
      await db.users.put({ id: 8, from: 'users' })
    })
    // Users 8 did not exist: a create, with what was stored, and no previous value.
    const stored = await db.users.get(8)
    expect(batches[1]!.events).toEqual([
      expect.objectContaining({ type: 'create', table: 'users', key: 8, value: stored }),
    ])
    expect(batches[1]!.events[0]!.previous).toBeUndefined()
  })
}
