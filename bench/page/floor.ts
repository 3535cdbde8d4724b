// The floor of a captured write, measured beside every case: raw Dexie doing the write the
// application asked for, plus — in raw IndexedDB, on the same transaction — only the requests
// any capture must add: the read of what the write replaces (none where Dexie's own update(),
// modify() or bulkUpdate() just read it) and the add of the changelog row that commits with
// the data. No events, no copies, no diff, no bookkeeping: what a capture would cost if its
// JavaScript were free. `changecast / floor` is then Changecast's own price.
import type { DBCore, DBCoreKeyRange, DBCoreTable, Middleware } from 'dexie'

/** The floor's changelog store. */
export const FLOOR_LOG = 'floor_log'

const ANY = 3 // DBCoreRangeType.Any

function nativeRange(range: DBCoreKeyRange): IDBKeyRange | undefined {
  if ((range.type as number) === ANY) return undefined
  return IDBKeyRange.bound(range.lower, range.upper, range.lowerOpen, range.upperOpen)
}

/**
 * The cheapest read of what `keys` hold: one `get` for one key, else one `getAll` over
 * their range (the benchmark's keys are consecutive numbers: a floor may know its workload).
 */
function readBefore(store: IDBObjectStore, keys: readonly unknown[]): IDBRequest {
  if (keys.length === 1) return store.get(keys[0] as IDBValidKey)
  let lower = Infinity
  let upper = -Infinity
  for (const key of keys as number[]) {
    if (key < lower) lower = key
    if (key > upper) upper = key
  }
  return store.getAll(IDBKeyRange.bound(lower, upper))
}

export function floorMiddleware(): Middleware<DBCore> {
  // Per transaction: tables whose values Dexie itself read (with `cache`) since their last write.
  const readByDexie = new WeakMap<object, Set<string>>()
  return {
    stack: 'dbcore',
    name: 'floor',
    level: 1.5,
    create(down) {
      return {
        ...down,
        transaction(stores, mode, options) {
          return down.transaction(mode === 'readwrite' ? [...stores, FLOOR_LOG] : stores, mode, options)
        },
        table(name) {
          const table = down.table(name)
          if (name === FLOOR_LOG) return table
          const floor: DBCoreTable = {
            ...table,
            getMany(req) {
              if (req.cache) {
                let read = readByDexie.get(req.trans)
                if (!read) readByDexie.set(req.trans, (read = new Set()))
                read.add(name)
              }
              return table.getMany(req)
            },
            mutate(req) {
              const trans = req.trans as unknown as IDBTransaction
              const store = trans.objectStore(name)
              const log = trans.objectStore(FLOOR_LOG)
              const dexieRead = readByDexie.get(req.trans)?.delete(name) ?? false
              switch (req.type) {
                case 'add':
                  log.add({ changes: req.values.map((value: unknown) => ({ type: 'create', value })) })
                  break
                case 'put': {
                  if (!dexieRead) readBefore(store, req.keys ?? req.values.map((value: { id: unknown }) => value.id))
                  log.add({ changes: req.values.map((value: unknown) => ({ type: 'put', value })) })
                  break
                }
                case 'delete': {
                  const read = readBefore(store, req.keys)
                  read.onsuccess = () => {
                    const found = (Array.isArray(read.result) ? read.result : [read.result]) as unknown[]
                    log.add({ changes: found.map((previous) => ({ type: 'delete', previous })) })
                  }
                  break
                }
                case 'deleteRange': {
                  const read = store.getAll(nativeRange(req.range))
                  read.onsuccess = () => {
                    log.add({ changes: (read.result as unknown[]).map((previous) => ({ type: 'delete', previous })) })
                  }
                  break
                }
              }
              return table.mutate(req)
            },
          }
          return floor
        },
      }
    },
  }
}
