import Dexie, { type DBCoreTransaction, type Table } from 'dexie'
import { afterEach, expect, it } from 'vitest'
import { hasDexieCache, isExplicit } from '../../src/capture/dexie-internals.js'

let counter = 0

/**
 * One test per private field of Dexie's that Changecast reads (see `dexie-internals.ts`):
 * each fails when a Dexie release changes what Changecast relies on. Run in Node
 * (fake-indexeddb) and in Chromium.
 */
export function dexieInternalsSuite(): void {
  const dbs: Dexie[] = []
  afterEach(async () => {
    for (const db of dbs.splice(0)) {
      db.close()
      await Dexie.delete(db.name)
    }
  })

  it('reads IDBTransaction._explicit: set on the transactions of db.transaction(), absent on those Dexie opens itself', async () => {
    const db = new Dexie(`internals-${Date.now()}-${++counter}`) as Dexie & { items: Table<{ id: number }, number> }
    dbs.push(db)
    db.version(1).stores({ items: 'id' })
    // Sees the native transaction of every write, as Changecast's middleware does.
    const seen: Array<{ explicit: boolean; native: boolean }> = []
    db.use({
      stack: 'dbcore',
      name: 'transaction-spy',
      create: (down) => ({
        ...down,
        table: (name) => {
          const table = down.table(name)
          return {
            ...table,
            mutate: (req) => {
              const trans: DBCoreTransaction = req.trans
              seen.push({ explicit: isExplicit(trans), native: trans instanceof IDBTransaction })
              return table.mutate(req)
            },
          }
        },
      }),
    })
    await db.open()
    await db.items.put({ id: 1 })
    await db.items.bulkPut([{ id: 2 }, { id: 3 }])
    await db.items.update(1, { id: 1 })
    await db.transaction('rw', db.items, async () => {
      await db.items.put({ id: 4 })
      // A nested transaction runs in its parent's native transaction.
      await db.transaction('rw', db.items, () => db.items.put({ id: 5 }))
      expect(isExplicit(Dexie.currentTransaction.idbtrans)).toBe(true)
    })
    expect(seen).toEqual([
      { explicit: false, native: true },
      { explicit: false, native: true },
      { explicit: false, native: true },
      { explicit: true, native: true },
      { explicit: true, native: true },
    ])
  })

  it('reads IDBTransaction._cache: set by a cached read, answering the next one for any table, emptied by a put', async () => {
    const db = new Dexie(`internals-${Date.now()}-${++counter}`) as Dexie & {
      a: Table<{ id: number; from: string }, number>
      b: Table<{ id: number; from: string }, number>
    }
    dbs.push(db)
    db.version(1).stores({ a: 'id', b: 'id' })
    await db.open()
    await db.a.put({ id: 1, from: 'a' })
    await db.b.put({ id: 1, from: 'b' })
    await db.transaction('rw', db.a, db.b, async () => {
      const trans = Dexie.currentTransaction.idbtrans
      const core = (name: string) => db.core.table(name)
      expect(hasDexieCache(trans)).toBe(false)
      expect(await core('a').getMany({ trans, keys: [1], cache: 'immutable' })).toEqual([{ id: 1, from: 'a' }])
      expect(hasDexieCache(trans)).toBe(true)
      // Keyed by primary key only: table b's cached read gets table a's row. That is why
      // Changecast keeps only the answers Dexie read from IndexedDB.
      expect(await core('b').getMany({ trans, keys: [1], cache: 'immutable' })).toEqual([{ id: 1, from: 'a' }])
      await db.b.put({ id: 2, from: 'b' })
      expect(hasDexieCache(trans)).toBe(false)
      expect(await core('b').getMany({ trans, keys: [1], cache: 'immutable' })).toEqual([{ id: 1, from: 'b' }])
    })
  })
}
