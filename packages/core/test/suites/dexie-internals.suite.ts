import Dexie, { type DBCoreTransaction, type Table } from 'dexie'
import { afterEach, expect, it } from 'vitest'
import { isExplicit } from '../../src/capture/dexie-internals.js'

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
}
