import Dexie, { type DBCoreTable } from 'dexie'
import { afterEach, describe, expect, it } from 'vitest'
import {
  changecast,
  ChangecastError,
  ChangecastStateError,
  InvalidFilterError,
  SubscriberError,
} from '@changecast/core'
import { createDb, destroy, record, setup, todo, type TestDB, type Todo } from './helpers.js'

/**
 * The behavioural spec of change capture. Run by `capture.test.ts` (Node + fake-indexeddb)
 * and `capture.browser.test.ts` (Chromium's native IndexedDB).
 */
export function captureSuite(): void {
  const opened: Dexie[] = []
  afterEach(async () => {
    await Promise.all(opened.splice(0).map(destroy))
  })
  async function open(...args: Parameters<typeof setup>) {
    const env = await setup(...args)
    opened.push(env.db)
    return env
  }

  describe('write paths', () => {
    it('emits create for add, with the stored value', async () => {
      const { db, events } = await open()
      await db.todos.add(todo(1))
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({ type: 'create', table: 'todos', key: 1, value: todo(1), source: 'local' })
      expect(events[0]).not.toHaveProperty('previous')
    })

    it('emits create for put of a new key and update for put of an existing key', async () => {
      const { db, events } = await open()
      await db.todos.put(todo(1, 'a'))
      await db.todos.put(todo(1, 'b'))
      expect(events.map((e) => e.type)).toEqual(['create', 'update'])
      expect(events[1]).toMatchObject({
        key: 1,
        value: todo(1, 'b'),
        previous: todo(1, 'a'),
        changes: { title: 'b' },
      })
    })

    it('emits update for update(), with changed key paths', async () => {
      const { db, events, clear } = await open()
      await db.todos.add(todo(1, 'a', { meta: { priority: 1, owner: 'ann' } }))
      clear()
      await db.todos.update(1, { title: 'b', 'meta.priority': 2 })
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({
        type: 'update',
        key: 1,
        changes: { title: 'b', 'meta.priority': 2 },
        previous: { title: 'a', meta: { priority: 1 } },
        value: { title: 'b', meta: { priority: 2, owner: 'ann' } },
      })
    })

    it('reports a removed property as a change to undefined', async () => {
      const { db, events, clear } = await open()
      await db.todos.add(todo(1, 'a', { tags: ['x'] }))
      clear()
      await db.todos.update(1, { tags: undefined })
      expect(events[0]?.changes).toEqual({ tags: undefined })
    })

    it('emits nothing for an update that changes nothing, or a key that does not exist', async () => {
      const { db, events, clear } = await open()
      await db.todos.add(todo(1, 'a'))
      clear()
      await db.todos.update(1, { title: 'a' })
      await db.todos.put(todo(1, 'a'))
      await db.todos.update(99, { title: 'nope' })
      expect(events).toEqual([])
    })

    it('emits create for upsert of a new key and update for an existing key', async () => {
      const { db, events } = await open()
      await db.todos.upsert(1, { title: 'a', done: false })
      await db.todos.upsert(1, { done: true })
      expect(events.map((e) => e.type)).toEqual(['create', 'update'])
      expect(events[0]?.value).toEqual({ id: 1, title: 'a', done: false })
      expect(events[1]?.changes).toEqual({ done: true })
    })

    it('emits one create per row for bulkAdd', async () => {
      const { db, summary, batches } = await open()
      await db.todos.bulkAdd([todo(1), todo(2), todo(3)])
      expect(summary()).toEqual(['create todos 1', 'create todos 2', 'create todos 3'])
      expect(batches).toHaveLength(1)
    })

    it('emits nothing for the failed items of a committed bulkAdd, and creates for the rest', async () => {
      const { db, summary, clear } = await open()
      await db.todos.add(todo(2))
      clear()
      await db.transaction('rw', db.todos, async () => {
        await db.todos.bulkAdd([todo(1), todo(2), todo(3)]).catch((error: unknown) => {
          expect(error).toBeInstanceOf(Dexie.BulkError)
        })
      })
      expect(summary()).toEqual(['create todos 1', 'create todos 3'])
      expect(await db.todos.count()).toBe(3)
    })

    it('emits create and update for a bulkPut of new and existing rows', async () => {
      const { db, events, clear } = await open()
      await db.todos.bulkAdd([todo(1), todo(2)])
      clear()
      await db.todos.bulkPut([todo(1, 'changed'), todo(2), todo(3)])
      expect(events.map((e) => [e.type, e.key])).toEqual([
        ['update', 1],
        ['create', 3],
      ])
    })

    it('tells creates from updates in large bulk writes, with dense and with sparse keys', async () => {
      const { db, events, clear } = await open()
      await db.todos.bulkAdd(Array.from({ length: 50 }, (_, i) => todo(i * 2)))
      clear()
      // Dense: one range read covers keys 0..99, half of which exist.
      await db.todos.bulkPut(Array.from({ length: 100 }, (_, i) => todo(i, 'dense')))
      expect(events.filter((e) => e.type === 'update').map((e) => e.key)).toEqual(
        Array.from({ length: 50 }, (_, i) => i * 2),
      )
      expect(events.filter((e) => e.type === 'create')).toHaveLength(50)
      expect(events.find((e) => e.key === 4)).toMatchObject({ previous: todo(4), changes: { title: 'dense' } })
      clear()
      // Sparse: 40 keys spread over a range holding many other rows.
      await db.todos.bulkAdd(Array.from({ length: 400 }, (_, i) => todo(1000 + i)))
      clear()
      const sparse = Array.from({ length: 40 }, (_, i) => todo(1000 + i * 20 + (i % 2), 'sparse'))
      await db.todos.bulkPut(sparse)
      expect(events.map((e) => e.type)).toEqual(sparse.map((t) => (t.id < 1400 ? 'update' : 'create')))
      await db.todos.bulkDelete([...sparse.map((t) => t.id), 5000])
      expect(events.filter((e) => e.type === 'delete')).toHaveLength(40)
    })

    it('treats a key repeated inside one bulkPut as create then update', async () => {
      const { db, events } = await open()
      await db.todos.bulkPut([todo(1, 'a'), todo(1, 'b')])
      expect(events.map((e) => e.type)).toEqual(['create', 'update'])
      expect(events[1]).toMatchObject({ previous: todo(1, 'a'), changes: { title: 'b' } })
    })

    it('emits updates for bulkUpdate, and nothing for missing keys', async () => {
      const { db, events, clear } = await open()
      await db.todos.bulkAdd([todo(1), todo(2)])
      clear()
      const updated = await db.todos.bulkUpdate([
        { key: 1, changes: { done: true } },
        { key: 7, changes: { done: true } },
        { key: 2, changes: { title: 'two' } },
      ])
      expect(updated).toBe(2)
      expect(events.map((e) => [e.type, e.key, e.changes])).toEqual([
        ['update', 1, { done: true }],
        ['update', 2, { title: 'two' }],
      ])
    })

    it('emits delete with the previous value, and nothing for a key that does not exist', async () => {
      const { db, events, clear } = await open()
      await db.todos.add(todo(1))
      clear()
      await db.todos.delete(1)
      await db.todos.delete(1)
      await db.todos.delete(42)
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({ type: 'delete', key: 1, previous: todo(1) })
      expect(events[0]).not.toHaveProperty('value')
    })

    it('emits one delete per existing key for bulkDelete', async () => {
      const { db, summary, clear } = await open()
      await db.todos.bulkAdd([todo(1), todo(2), todo(3)])
      clear()
      await db.todos.bulkDelete([3, 9, 1])
      expect(summary()).toEqual(['delete todos 3', 'delete todos 1'])
    })

    it('emits one delete per removed row, with previous, for clear()', async () => {
      const { db, events, clear } = await open()
      await db.todos.bulkAdd([todo(1), todo(2)])
      clear()
      await db.todos.clear()
      expect(events.map((e) => [e.type, e.key, e.previous])).toEqual([
        ['delete', 1, todo(1)],
        ['delete', 2, todo(2)],
      ])
      await db.todos.clear()
      expect(events).toHaveLength(2)
    })

    it('emits updates for where().modify(spec)', async () => {
      const { db, events, clear } = await open()
      await db.todos.bulkAdd([todo(1), todo(2), todo(3, 'x', { done: true })])
      clear()
      await db.todos.where('id').between(1, 2, true, true).modify({ done: true })
      expect(events.map((e) => [e.type, e.key, e.changes])).toEqual([
        ['update', 1, { done: true }],
        ['update', 2, { done: true }],
      ])
    })

    it('emits updates for modify(fn) and filter().modify(), and nothing for rows it leaves unchanged', async () => {
      const { db, events, clear } = await open()
      await db.todos.bulkAdd([todo(1), todo(2), todo(3)])
      clear()
      await db.todos.toCollection().modify((t) => {
        if (t.id !== 2) t.title = t.title.toUpperCase()
      })
      expect(events.map((e) => [e.key, e.changes])).toEqual([
        [1, { title: 'TODO 1' }],
        [3, { title: 'TODO 3' }],
      ])
      clear()
      await db.todos.filter((t) => t.id > 1).modify({ done: true })
      expect(events.map((e) => e.key)).toEqual([2, 3])
    })

    it('emits deletes for a modify(fn) that deletes rows', async () => {
      const { db, summary, clear } = await open()
      await db.todos.bulkAdd([todo(1), todo(2)])
      clear()
      await db.todos.toCollection().modify(function (this: { value?: unknown }, t) {
        if (t.id === 2) delete this.value
      })
      expect(summary()).toEqual(['delete todos 2'])
    })

    it('emits delete then create for a modify that changes the primary key', async () => {
      const { db, events, clear } = await open()
      await db.todos.add(todo(1, 'a'))
      clear()
      await db.todos
        .where('id')
        .equals(1)
        .modify((t) => {
          t.id = 10
        })
      expect(events.map((e) => [e.type, e.key])).toEqual([
        ['create', 10],
        ['delete', 1],
      ])
      expect(await db.todos.toArray()).toEqual([todo(10, 'a')])
    })

    it('emits deletes for where().delete() and for Collection.delete() of a whole table', async () => {
      const { db, summary, clear } = await open()
      await db.todos.bulkAdd([todo(1), todo(2), todo(3), todo(4)])
      clear()
      await db.todos.where('id').below(3).delete()
      expect(summary()).toEqual(['delete todos 1', 'delete todos 2'])
      clear()
      await db.todos.toCollection().delete()
      expect(summary()).toEqual(['delete todos 3', 'delete todos 4'])
    })

    it('emits deletes for filter().delete()', async () => {
      const { db, summary, clear } = await open()
      await db.todos.bulkAdd([todo(1), todo(2), todo(3)])
      clear()
      await db.todos.filter((t) => t.id % 2 === 1).delete()
      expect(summary()).toEqual(['delete todos 1', 'delete todos 3'])
    })
  })

  describe('keys', () => {
    it('fills in auto-increment keys from the write results', async () => {
      const { db, events } = await open()
      const id = await db.notes.add({ text: 'hello' })
      const ids = await db.notes.bulkAdd([{ text: 'b' }, { text: 'c' }], { allKeys: true })
      expect(events.map((e) => e.key)).toEqual([id, ...ids])
      expect(events[0]?.value).toEqual({ id, text: 'hello' })
    })

    it('handles compound primary keys', async () => {
      const { db, events } = await open()
      await db.pairs.put({ a: 'x', b: 1, label: 'one' })
      await db.pairs.update(['x', 1], { label: 'uno' })
      await db.pairs.delete(['x', 1])
      expect(events.map((e) => [e.type, e.key])).toEqual([
        ['create', ['x', 1]],
        ['update', ['x', 1]],
        ['delete', ['x', 1]],
      ])
    })

    it('handles dotted key paths', async () => {
      const { db, events } = await open()
      await db.docs.put({ info: { id: 'd1' }, body: 'v1' })
      await db.docs.put({ info: { id: 'd1' }, body: 'v2' })
      expect(events.map((e) => [e.type, e.key, e.changes])).toEqual([
        ['create', 'd1', undefined],
        ['update', 'd1', { body: 'v2' }],
      ])
    })

    it('handles outbound keys, given and generated', async () => {
      const { db, events } = await open()
      const generated = await db.blobs.add({ text: 'auto' })
      await db.blobs.put({ text: 'given' }, 100)
      await db.blobs.put({ text: 'given again' }, 100)
      await db.blobs.delete(generated)
      expect(events.map((e) => [e.type, e.key])).toEqual([
        ['create', generated],
        ['create', 100],
        ['update', 100],
        ['delete', generated],
      ])
      expect(events[0]?.value).toEqual({ text: 'auto' })
    })
  })

  describe('commit-only delivery', () => {
    it('emits nothing before the transaction commits', async () => {
      const { db, events } = await open()
      let seenInside = -1
      await db.transaction('rw', db.todos, async () => {
        await db.todos.add(todo(1))
        await db.todos.put(todo(2))
        seenInside = events.length
      })
      expect(seenInside).toBe(0)
      expect(events).toHaveLength(2)
    })

    it('emits nothing when the transaction callback throws', async () => {
      const { db, events } = await open()
      await expect(
        db.transaction('rw', db.todos, db.notes, async () => {
          await db.todos.add(todo(1))
          await db.notes.add({ text: 'x' })
          throw new Error('boom')
        }),
      ).rejects.toThrow('boom')
      expect(events).toEqual([])
      expect(await db.todos.count()).toBe(0)
    })

    it('emits nothing when the transaction is aborted with Dexie.currentTransaction.abort()', async () => {
      const { db, events } = await open()
      await db
        .transaction('rw', db.todos, async () => {
          await db.todos.add(todo(1))
          Dexie.currentTransaction.abort()
        })
        .catch(() => undefined)
      expect(events).toEqual([])
    })

    it('emits nothing for a failed add outside a transaction', async () => {
      const { db, events, clear } = await open()
      await db.todos.add(todo(1))
      clear()
      await expect(db.todos.add(todo(1))).rejects.toThrow()
      expect(events).toEqual([])
    })

    it('delivers one batch per transaction, in write order, across tables and nested transactions', async () => {
      const { db, batches, events } = await open()
      await db.transaction('rw', db.todos, db.notes, db.pairs, async () => {
        await db.todos.add(todo(1))
        await db.notes.add({ text: 'n' })
        await db.transaction('rw', db.todos, db.pairs, async () => {
          await db.pairs.add({ a: 'a', b: 1, label: 'p' })
          await db.todos.update(1, { done: true })
        })
        await db.todos.delete(1)
      })
      expect(batches).toHaveLength(1)
      const batch = batches[0]!
      expect(batch.events.map((e) => `${e.type} ${e.table}`)).toEqual([
        'create todos',
        'create notes',
        'create pairs',
        'update todos',
        'delete todos',
      ])
      expect(batch.events).toEqual(events)
      expect(new Set(events.map((e) => e.tx))).toEqual(new Set([batch.tx]))
      expect(events.every((e) => e.at === batch.at && e.origin === batch.origin)).toBe(true)
    })

    it('delivers events before the awaited write returns', async () => {
      const { db, events } = await open()
      await db.todos.add(todo(1))
      expect(events).toHaveLength(1)
    })

    it('keeps the order of writes that are not awaited, and reads see earlier writes', async () => {
      const { db, events } = await open()
      let seen: unknown
      await db.transaction('rw', db.todos, async () => {
        void db.todos.put(todo(1, 'a'))
        void db.todos.put(todo(1, 'b'))
        void db.todos.delete(1)
        void db.todos.add(todo(1, 'c'))
        seen = await db.todos.get(1)
      })
      expect(seen).toEqual(todo(1, 'c'))
      expect(events.map((e) => `${e.type} ${String(e.value && (e.value as { title: string }).title)}`)).toEqual([
        'create a',
        'update b',
        'delete undefined',
        'create c',
      ])
    })

    it('gives each transaction its own tx id', async () => {
      const { db, batches } = await open()
      await db.todos.add(todo(1))
      await db.todos.add(todo(2))
      expect(batches).toHaveLength(2)
      expect(batches[0]!.tx).not.toBe(batches[1]!.tx)
    })
  })

  describe('subscribers', () => {
    it('keeps delivering when a subscriber throws, and reports the error', async () => {
      const { db, feed } = await open()
      const reached: number[] = []
      const errors: unknown[] = []
      feed.onError((error) => errors.push(error))
      feed.on('todos', () => {
        throw new Error('subscriber bug')
      })
      feed.on('todos', (e) => reached.push(e.key))
      await db.todos.add(todo(1))
      expect(reached).toEqual([1])
      expect(await db.todos.get(1)).toEqual(todo(1))
      expect(errors).toHaveLength(1)
      expect(errors[0]).toBeInstanceOf(SubscriberError)
      expect(errors[0]).toBeInstanceOf(ChangecastError)
      expect((errors[0] as Error).message).toContain('subscriber bug')
    })

    it('filters by table, key, type and source', async () => {
      const { db, feed } = await open()
      const byTopic: unknown[] = []
      const byKeyTopic: unknown[] = []
      const byFilter: unknown[] = []
      const byCompound: unknown[] = []
      feed.on('notes', (e) => byTopic.push(e.key))
      feed.on('todos:2', (e) => byKeyTopic.push(`${e.type} ${e.key}`))
      feed.on({ table: 'todos', key: 2, type: ['update', 'delete'], source: 'local' }, (e) => byFilter.push(e.type))
      feed.on({ table: ['pairs'], key: ['x', 1] }, (e) => byCompound.push(e.type))
      await db.todos.bulkAdd([todo(1), todo(2)])
      await db.todos.update(2, { done: true })
      await db.todos.update(1, { done: true })
      await db.todos.delete(2)
      await db.notes.add({ text: 'n' })
      await db.pairs.bulkAdd([
        { a: 'x', b: 1, label: '' },
        { a: 'x', b: 2, label: '' },
      ])
      expect(byTopic).toHaveLength(1)
      expect(byKeyTopic).toEqual(['create 2', 'update 2', 'delete 2'])
      expect(byFilter).toEqual(['update', 'delete'])
      expect(byCompound).toEqual(['create'])
    })

    it('stops delivering after unsubscribe, and unsubscribing twice is harmless', async () => {
      const { db, feed } = await open()
      const seen: unknown[] = []
      const off = feed.on('todos', (e) => seen.push(e.key))
      await db.todos.add(todo(1))
      off()
      off()
      await db.todos.add(todo(2))
      expect(seen).toEqual([1])
    })

    it('hands out frozen values that are not shared with Dexie, the caller or other events', async () => {
      const { db, events, clear } = await open()
      const original = todo(1, 'a', { tags: ['t'] })
      await db.todos.add(original)
      original.title = 'changed by caller after add'
      expect(events[0]?.value).toEqual(todo(1, 'a', { tags: ['t'] }))
      expect(events[0]?.value).not.toBe(original)
      clear()
      await db.todos.update(1, { title: 'b' })
      const [update] = events
      // Read-only: every subscriber gets the same event, so none may change it.
      expect(Object.isFrozen(update)).toBe(true)
      expect(() => (update!.value as { tags: string[] }).tags.push('mutated')).toThrow(TypeError)
      expect(() => ((update!.previous as { title: string }).title = 'mutated')).toThrow(TypeError)
      expect(() => ((update!.changes as Record<string, unknown>).title = 'mutated')).toThrow(TypeError)
      expect(update).toMatchObject({ value: todo(1, 'b', { tags: ['t'] }), previous: todo(1, 'a', { tags: ['t'] }) })
      expect(await db.todos.get(1)).toEqual(todo(1, 'b', { tags: ['t'] }))
      // The value read for the update is Dexie's; the event's previous is Changecast's own copy.
      clear()
      await db.todos.bulkUpdate([{ key: 1, changes: { done: true } }])
      expect(events[0]!.previous).toEqual(todo(1, 'b', { tags: ['t'] }))
      expect(await db.todos.get(1)).toEqual(todo(1, 'b', { tags: ['t'], done: true }))
    })

    it('gives no two events of a transaction the same object', async () => {
      const { db, batches, clear } = await open()
      // A key twice in one request, and one key written by several requests.
      await db.todos.bulkPut([todo(1, 'a', { tags: ['x'] }), todo(1, 'b', { tags: ['y'] })])
      await db.transaction('rw', db.todos, async () => {
        await db.todos.update(1, { title: 'c' })
        await db.todos.update(1, { title: 'd' })
        await db.todos.where('id').equals(1).modify({ title: 'e' })
        await db.todos.bulkUpdate([{ key: 1, changes: { title: 'f' } }])
        await db.todos.put(todo(1, 'g'))
      })
      const objects = new Set<unknown>()
      const all = batches.flatMap((batch) => batch.events)
      expect(all).toHaveLength(7)
      for (const event of all) {
        for (const part of [event.value, event.previous, event.changes]) {
          if (part === undefined) continue
          expect(objects.has(part)).toBe(false)
          objects.add(part)
        }
      }
      expect(all.map((e) => (e.previous as Todo | undefined)?.title)).toEqual([undefined, 'a', 'b', 'c', 'd', 'e', 'f'])
      clear()
    })

    it('keeps liveQuery results intact when subscribers mutate event values', async () => {
      const { db, feed } = await open()
      await db.todos.add(todo(1, 'a'))
      feed.on('todos', (e) => {
        if (e.value) (e.value as { title: string }).title = 'mutated by subscriber'
      })
      const results: unknown[] = []
      const observable = Dexie.liveQuery(() => db.todos.toArray())
      const done = new Promise<void>((resolve) => {
        const subscription = observable.subscribe((rows) => {
          results.push(rows)
          if (results.length === 1) void db.todos.put(todo(1, 'b'))
          if (results.length === 2) {
            subscription.unsubscribe()
            resolve()
          }
        })
      })
      await done
      expect(results[1]).toEqual([todo(1, 'b')])
      expect(await db.todos.get(1)).toEqual(todo(1, 'b'))
    })
  })

  describe('schema changes and setup', () => {
    it('captures writes made during upgrade() and on("populate") once they commit', async () => {
      const name = `upgrade-${Date.now()}`
      const v1 = new Dexie(name)
      v1.version(1).stores({ items: 'id' })
      await v1.table('items').bulkAdd([
        { id: 1, n: 1 },
        { id: 2, n: 2 },
      ])
      v1.close()

      const db = new Dexie(name)
      opened.push(db)
      db.version(1).stores({ items: 'id' })
      db.version(2)
        .stores({ items: 'id', extra: 'id' })
        .upgrade(async (tx) => {
          await tx
            .table('items')
            .toCollection()
            .modify((item: { n: number }) => {
              item.n *= 10
            })
        })
      db.on('populate', (tx) => {
        void tx.table('extra').add({ id: 'seed' })
      })
      const feed = changecast(db)
      const { events } = record(feed)
      await db.open()
      expect(events.map((e) => [e.type, e.table, e.key])).toEqual([
        ['update', 'items', 1],
        ['update', 'items', 2],
      ])

      const fresh = new Dexie(`populate-${Date.now()}`)
      opened.push(fresh)
      fresh.version(1).stores({ extra: 'id' })
      fresh.on('populate', (tx) => {
        void tx.table('extra').add({ id: 'seed' })
      })
      const freshFeed = changecast(fresh)
      const seen = record(freshFeed)
      await fresh.open()
      expect(seen.summary()).toEqual(['create extra "seed"'])
    })

    it("never captures Dexie's $-prefixed tables, and honours the tables option", async () => {
      const all = await open()
      await all.db.$meta.put({ id: 'x' })
      expect(all.events).toEqual([])
      const only = await open({ tables: ['notes'] })
      await only.db.todos.add(todo(1))
      await only.db.notes.add({ text: 'n' })
      expect(only.summary()).toEqual(['create notes 1'])
      const byPredicate = await open({ tables: (name) => name.startsWith('t') })
      await byPredicate.db.todos.add(todo(1))
      await byPredicate.db.notes.add({ text: 'n' })
      expect(byPredicate.summary()).toEqual(['create todos 1'])
    })

    it('leaves previous out of events when previous capture is off, and still tells create from update', async () => {
      const { db, events } = await open({ previous: ['notes'] })
      await db.todos.put(todo(1, 'a'))
      await db.todos.put(todo(1, 'b'))
      await db.todos.delete(1)
      expect(events.map((e) => e.type)).toEqual(['create', 'update', 'delete'])
      expect(events.some((e) => 'previous' in e)).toBe(false)
      expect(events[1]?.changes).toEqual({ title: 'b' })
    })

    it('tells which rows a delete removed when previous capture is off, reading keys only', async () => {
      const { db, events } = await open({ previous: false })
      await db.todos.bulkAdd(Array.from({ length: 60 }, (_, i) => todo(i)))
      await db.todos.bulkDelete([...Array.from({ length: 40 }, (_, i) => i), 500])
      await db.todos.where('id').between(40, 50).delete()
      await db.todos.clear()
      expect(events.filter((e) => e.type === 'delete').map((e) => e.key)).toEqual(
        Array.from({ length: 60 }, (_, i) => i),
      )
      expect(events.some((e) => 'previous' in e)).toBe(false)
    })

    it('throws a clear error when called after the database opened, or twice', async () => {
      const db = createDb()
      opened.push(db)
      const feed = changecast(db)
      expect(() => changecast(db)).toThrow(ChangecastStateError)
      feed.close()
      await db.open()
      expect(() => changecast(db)).toThrow(/before the database .* opens/)
    })

    it('stops emitting after close(), and the database keeps working', async () => {
      const { db, feed, events } = await open()
      feed.close()
      feed.close()
      await db.todos.add(todo(1))
      expect(events).toEqual([])
      expect(await db.todos.get(1)).toEqual(todo(1))
      expect(feed.closed).toBe(true)
    })

    it('rejects a value that cannot be cloned, writes nothing, and emits nothing', async () => {
      const { db, events } = await open()
      const bad = { ...todo(2), fn: () => 1 }
      await expect(db.todos.bulkPut([todo(1), bad as never])).rejects.toThrow()
      expect(await db.todos.count()).toBe(0)
      expect(events).toEqual([])
    })
  })

  describe('bad input', () => {
    it('throws InvalidFilterError, a TypeError, for unknown tables, types, fields and bad handlers', async () => {
      const { feed } = await open()
      const cases: Array<[() => unknown, RegExp]> = [
        [
          () => feed.on('nope' as never, () => {}),
          /^Unknown table 'nope'. Tables you can subscribe to: todos, notes, pairs, docs, blobs\.$/,
        ],
        [() => feed.on('_changecast_log' as never, () => {}), /not captured/],
        [() => feed.on('nope:1' as never, () => {}), /Unknown table 'nope'/],
        [() => feed.on({ table: 'todos', type: 'created' as never }, () => {}), /Unknown type 'created'/],
        [() => feed.on({ table: 'todos', source: 'server' as never }, () => {}), /Unknown source 'server'/],
        [() => feed.on({ tabel: 'todos' } as never, () => {}), /Unknown filter field 'tabel'/],
        [() => feed.on({ key: {} as never }, () => {}), /not a valid IndexedDB key/],
        [() => feed.on('$meta' as never, () => {}), /not captured/],
        [() => feed.on('todos:' as never, () => {}), /no key after ':'/],
        [() => feed.on(42 as never, () => {}), /Expected a topic/],
        [() => feed.on('todos', 'not a function' as never), /handler must be a function/],
        [() => feed.onBatch(undefined as never), /handler must be a function/],
      ]
      for (const [call, message] of cases) {
        let thrown: unknown
        try {
          call()
        } catch (error) {
          thrown = error
        }
        expect(thrown, String(message)).toBeInstanceOf(InvalidFilterError)
        expect(thrown).toBeInstanceOf(TypeError)
        expect(thrown).toBeInstanceOf(ChangecastError)
        expect((thrown as Error).message).toMatch(message)
      }
    })

    it('throws for unknown or malformed options', () => {
      const db = createDb()
      expect(() => changecast(db, { tabels: [] } as never)).toThrow(/Unknown option 'tabels'/)
      expect(() => changecast(db, { previous: 'yes' } as never)).toThrow(/previous/)
      expect(() => changecast({} as never)).toThrow(/Dexie instance/)
    })
  })

  describe('reads', () => {
    /** Wraps the tables `wrap` picks below Dexie's existing-values cache (level -1): sees what reaches IndexedDB. */
    function below(db: TestDB, name: string, wrap: (table: DBCoreTable) => DBCoreTable | undefined) {
      db.use({
        stack: 'dbcore',
        name,
        level: -2,
        create: (down) => ({ ...down, table: (table) => wrap(down.table(table)) ?? down.table(table) }),
      })
    }

    function countReads(db: TestDB) {
      const reads = { getMany: 0, get: 0, query: 0 }
      // The data tables' reads (opening the changelog reads its identity row).
      below(db, 'read-counter', (table) =>
        table.name.startsWith('_changecast')
          ? undefined
          : {
              ...table,
              getMany: (req) => (reads.getMany++, table.getMany(req)),
              get: (req) => (reads.get++, table.get(req)),
              query: (req) => (reads.query++, table.query(req)),
            },
      )
      return reads
    }

    it('reads nothing for add and bulkAdd', async () => {
      let reads!: ReturnType<typeof countReads>
      const { db } = await open(undefined, (db) => (reads = countReads(db)))
      await db.todos.add(todo(1))
      await db.todos.bulkAdd([todo(2), todo(3)])
      expect(reads).toEqual({ getMany: 0, get: 0, query: 0 })
    })

    it('reuses the values Dexie already read for update, modify and bulkUpdate', async () => {
      let reads!: ReturnType<typeof countReads>
      const { db, events } = await open(undefined, (db) => (reads = countReads(db)))
      await db.todos.bulkAdd([todo(1), todo(2)])
      const before = { ...reads }
      await db.todos.update(1, { done: true })
      await db.todos.where('id').anyOf(1, 2).modify({ title: 'x' })
      await db.todos.bulkUpdate([{ key: 2, changes: { done: true } }])
      // Dexie itself reads once per operation; Changecast adds no read.
      expect(reads.getMany - before.getMany).toBe(3)
      expect(events.filter((e) => e.type === 'update')).toHaveLength(4)
    })

    /** What reaches IndexedDB while `run` works on a database made by `make`, with or without Changecast. */
    async function requests(withFeed: boolean, run: (db: TestDB) => Promise<unknown>) {
      const db = createDb()
      const reads = countReads(db)
      if (withFeed) changecast(db, { channel: false })
      await db.open()
      opened.push(db)
      await db.todos.bulkAdd(
        Array.from({ length: 675 }, (_, i) => i)
          .filter((i) => i % 3 !== 2)
          .map((id) => todo(id)),
      )
      const before = { ...reads }
      const result = await run(db)
      return {
        result,
        reads: {
          getMany: reads.getMany - before.getMany,
          get: reads.get - before.get,
          query: reads.query - before.query,
        },
        rows: await db.todos.toArray(),
      }
    }

    it("passes Dexie's own reads down as made: update() and modify() read what they read without Changecast", async () => {
      const operations: Array<(db: TestDB) => Promise<unknown>> = [
        (db) => db.todos.update(1, { done: true }),
        (db) => db.todos.update(7_000, { done: true }),
        // Three chunks of Dexie's 200, keys with gaps; then keys far apart.
        (db) => db.todos.toCollection().modify({ done: true }),
        (db) =>
          db.todos
            .where('id')
            .aboveOrEqual(600)
            .modify((row) => void (row.title = 'far')),
        (db) =>
          db.todos.bulkUpdate([
            { key: 4, changes: { title: 'x' } },
            { key: 5, changes: { title: 'y' } },
          ]),
      ]
      for (const operation of operations) {
        const plain = await requests(false, operation)
        const captured = await requests(true, operation)
        expect(captured).toEqual(plain)
      }
    })

    it('regression: a key a modify() did not find can be added, then updated, in the same transaction', async () => {
      const { db, events } = await open()
      await db.transaction('rw', db.todos, async () => {
        // A modify with a function writes nothing when it finds nothing (with a spec, Dexie
        // writes an empty chunk, which empties its cache).
        expect(
          await db.todos
            .where('id')
            .equals(5)
            .modify((row) => void (row.done = true)),
        ).toBe(0)
        await db.todos.add(todo(5))
        // A cached "no row at 5" would make this find nothing: an `add` leaves Dexie's cache as it is.
        expect(await db.todos.update(5, { title: 'five' })).toBe(1)
      })
      expect(await db.todos.get(5)).toEqual(todo(5, 'five'))
      expect(events.map((e) => e.type)).toEqual(['create', 'update'])
    })

    function countDeletes(db: TestDB) {
      const deletes = { keys: 0, ranges: 0 }
      below(db, 'delete-counter', (table) =>
        table.name !== 'todos'
          ? undefined
          : {
              ...table,
              mutate: (req) => {
                if (req.type === 'delete') deletes.keys += req.keys.length
                if (req.type === 'deleteRange') deletes.ranges++
                return table.mutate(req)
              },
            },
      )
      return deletes
    }

    it('deletes many close ascending keys alone in their transaction with one range delete, when the range holds only them', async () => {
      for (const previous of [true, false]) {
        let deletes!: ReturnType<typeof countDeletes>
        const { db, events, clear } = await open({ previous }, (db) => (deletes = countDeletes(db)))
        // 0..399 without the multiples of 7, and rows on both sides of the range.
        await db.todos.bulkAdd(
          [...Array.from({ length: 400 }, (_, i) => i).filter((i) => i % 7 !== 0), 1000].map((id) => todo(id)),
        )
        await db.todos.add(todo(-1))
        clear()
        // Requested: 100..299, some of them not there (the multiples of 7).
        const keys = Array.from({ length: 200 }, (_, i) => 100 + i)
        await db.todos.bulkDelete(keys)
        expect(deletes).toEqual({ keys: 0, ranges: 1 })
        const removed = keys.filter((id) => id % 7 !== 0)
        expect(events.map((e) => [e.type, e.key])).toEqual(removed.map((id) => ['delete', id]))
        if (previous) expect(events.map((e) => e.previous)).toEqual(removed.map((id) => todo(id)))
        const left = await db.todos.toCollection().primaryKeys()
        expect(left).toEqual([
          -1,
          ...Array.from({ length: 400 }, (_, i) => i).filter((i) => i % 7 !== 0 && (i < 100 || i >= 300)),
          1000,
        ])
      }
    })

    it('deletes key by key when the range holds other keys, in explicit transactions, and for few keys', async () => {
      let deletes!: ReturnType<typeof countDeletes>
      const { db, events, clear } = await open(undefined, (db) => (deletes = countDeletes(db)))
      await db.todos.bulkAdd([...Array.from({ length: 300 }, (_, i) => todo(i)), todo(150.5)])
      clear()
      // 150.5 lies between the keys asked for: a range delete would take it too.
      await db.todos.bulkDelete(Array.from({ length: 250 }, (_, i) => i))
      expect(deletes).toEqual({ keys: 250, ranges: 0 })
      expect(await db.todos.toCollection().primaryKeys()).toEqual([
        150.5,
        ...Array.from({ length: 50 }, (_, i) => 250 + i),
      ])
      expect(events).toHaveLength(250)
      // In a transaction of the application's, a write it makes right after (not awaited)
      // must run after the deletes, as made: they do not wait for a read.
      await db.todos.bulkAdd(Array.from({ length: 250 }, (_, i) => todo(i)))
      await db.transaction('rw', db.todos, () => {
        void db.todos.bulkDelete(Array.from({ length: 250 }, (_, i) => i))
        void db.todos.put(todo(5, 'kept'))
      })
      expect(await db.todos.get(5)).toEqual(todo(5, 'kept'))
      expect(deletes.ranges).toBe(0)
      await db.todos.bulkDelete([250, 251, 252])
      expect(deletes.ranges).toBe(0)
    })

    /** Counts the rows range reads of `todos` return, below Changecast. */
    function countRowsRead(db: TestDB) {
      const read = { rows: 0, queries: 0, gets: 0 }
      below(db, 'row-counter', (table) =>
        table.name !== 'todos'
          ? undefined
          : {
              ...table,
              query: (req) =>
                table.query(req).then((res) => {
                  read.queries++
                  read.rows += res.result.length
                  return res
                }),
              getMany: (req) => ((read.gets += req.keys.length), table.getMany(req)),
            },
      )
      return read
    }

    it('regression: a bulkPut of 40 close keys read every row between them (20,000 other keys there)', async () => {
      let read!: ReturnType<typeof countRowsRead>
      const { db, events, clear } = await open(undefined, (db) => (read = countRowsRead(db)))
      // 20,000 fractional keys in [0, 40), and the integer ids 10..19 among the 40 written below.
      await db.todos.bulkAdd([
        ...Array.from({ length: 20_000 }, (_, i) => todo(0.001 + i * 0.002)),
        ...Array.from({ length: 10 }, (_, i) => todo(10 + i, 'old')),
      ])
      clear()
      const before = { ...read }
      await db.todos.bulkPut(Array.from({ length: 40 }, (_, id) => todo(id, 'new')))
      // One range read of at most twice as many rows as keys (up to 0.159 here), then the keys
      // one by one.
      expect(read.queries - before.queries).toBe(1)
      expect(read.rows - before.rows).toBe(80)
      expect(read.gets - before.gets).toBe(40)
      expect(events.map((e) => `${e.type} ${e.key as number}`)).toEqual(
        Array.from({ length: 40 }, (_, id) => `${id >= 10 && id < 20 ? 'update' : 'create'} ${id}`),
      )
      expect(events.filter((e) => e.type === 'update').every((e) => (e.previous as Todo).title === 'old')).toBe(true)
      // The same for a delete: bounded, and no range delete over the keys between.
      clear()
      const deleting = { ...read }
      await db.todos.bulkDelete(Array.from({ length: 240 }, (_, id) => id))
      expect(read.rows - deleting.rows).toBe(480)
      expect(events).toHaveLength(40)
      expect(await db.todos.count()).toBe(20_000)
    })

    it('reads the keys of bulk writes in explicit transactions with the write, so every request keeps its order', async () => {
      let read!: ReturnType<typeof countRowsRead>
      const { db, batches, clear } = await open(undefined, (db) => (read = countRowsRead(db)))
      await db.todos.bulkAdd(Array.from({ length: 100 }, (_, id) => todo(id)))
      await db.notes.add({ id: 1, text: 'a' })
      clear()
      const seen: unknown[] = []
      await db.transaction('rw', db.todos, db.notes, () => {
        // None awaited: each request must run after the ones made before it.
        void db.todos.bulkPut(Array.from({ length: 100 }, (_, id) => todo(id, 'bulk')))
        void db.todos.get(5).then((row) => seen.push(row?.title))
        void db.todos.put(todo(5, 'single'))
        void db.notes.get(1).then((row) => seen.push(row?.text))
        void db.todos.bulkDelete(Array.from({ length: 50 }, (_, id) => 50 + id))
        void db.todos.count().then((n) => seen.push(n))
        void db.todos.put(todo(60, 'back'))
        void db.todos
          .where('id')
          .between(4, 6)
          .primaryKeys()
          .then((keys) => seen.push(keys))
      })
      // No range read that a write would wait for: one value read per key, made with the write
      // (100 + 50 for the bulk writes, one for each put).
      expect(read.queries).toBe(1) // the where().between() of the application
      expect(read.gets).toBe(152)
      expect(seen).toEqual(['bulk', 'a', 50, [4, 5]])
      expect(await db.todos.get(5)).toEqual(todo(5, 'single'))
      expect(await db.todos.get(60)).toEqual(todo(60, 'back'))
      expect(await db.todos.count()).toBe(51)
      expect(batches).toHaveLength(1)
      expect(batches[0]!.events.map((e) => `${e.type} ${e.key as number}`)).toEqual([
        ...Array.from({ length: 100 }, (_, id) => `update ${id}`),
        'update 5',
        ...Array.from({ length: 50 }, (_, id) => `delete ${50 + id}`),
        'create 60',
      ])
    })

    it('answers a bulkGet of close keys in a readwrite transaction as IndexedDB would', async () => {
      const { db } = await open()
      const ids = Array.from({ length: 60 }, (_, i) => i * 2)
      await db.todos.bulkAdd(ids.map((id) => todo(id)))
      const wanted = Array.from({ length: 40 }, (_, i) => i + 10)
      const found = await db.transaction('rw', db.todos, () => db.todos.bulkGet(wanted))
      expect(found).toEqual(wanted.map((id) => (id % 2 === 0 ? todo(id) : undefined)))
      // Each value its own object, as from IndexedDB.
      expect(new Set(found.filter(Boolean)).size).toBe(20)
    })
  })
}
