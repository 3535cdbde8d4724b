// The ways an application can learn about its own writes, each set up to capture the
// same thing (type, key, new value, previous value) and hand it to one subscriber.
import Dexie, { type Table, type Transaction } from 'dexie'
import DexieObservable from 'dexie-observable'
import { changecast, type ChangecastOptions } from '@changecast/core'
import { FLOOR_LOG, floorMiddleware } from './floor'

export const variants = [
  'raw',
  'floor',
  'dexie-hooks',
  'dexie-observable',
  'changecast',
  'changecast-nolog',
  'changecast-noprevious',
] as const
export type Variant = (typeof variants)[number]

export type Row = { id: number; v: number; title: string; done: boolean }
export type BenchDb = Dexie & { items: Table<Row, number> }

export interface Subject {
  db: BenchDb
  /** Number of changes delivered to the subscriber so far. */
  delivered(): number
  close(): Promise<void>
}

// Debug mode adds async stack tracking to every operation; no production app runs with it.
Dexie.debug = false

let counter = 0

export async function open(variant: Variant, schema = 'id'): Promise<Subject> {
  const name = `bench-${variant}-${Date.now()}-${++counter}`
  // dexie-observable registers itself on every instance unless `addons` says otherwise.
  const db = new Dexie(name, { addons: variant === 'dexie-observable' ? [DexieObservable] : [] }) as BenchDb
  // The floor's changelog is a store of its own; Changecast adds its own store itself.
  db.version(1).stores(variant === 'floor' ? { items: schema, [FLOOR_LOG]: '++' } : { items: schema })
  let delivered = 0
  let dispose = () => {}

  if (variant === 'dexie-hooks') {
    const staged = new Map<Transaction, unknown[]>()
    const stage = (trans: Transaction, change: unknown) => {
      let list = staged.get(trans)
      if (!list) {
        list = []
        staged.set(trans, list)
        trans.on('complete', () => {
          delivered += list!.length
          staged.delete(trans)
        })
      }
      list.push(change)
    }
    db.items.hook('creating', function (key, obj, trans) {
      stage(trans, { type: 'create', key, value: Dexie.deepClone(obj) })
    })
    db.items.hook('updating', function (changes, key, obj, trans) {
      stage(trans, { type: 'update', key, changes, previous: obj })
    })
    db.items.hook('deleting', function (key, obj, trans) {
      stage(trans, { type: 'delete', key, previous: obj })
    })
  } else if (variant === 'floor') {
    db.use(floorMiddleware())
  } else if (variant === 'dexie-observable') {
    const listener = (changes: unknown[]) => {
      delivered += changes.length
    }
    ;(db.on as unknown as (event: 'changes', fn: typeof listener) => void)('changes', listener)
  } else if (variant !== 'raw') {
    const options: ChangecastOptions = { channel: false }
    if (variant === 'changecast-nolog') options.log = false
    if (variant === 'changecast-noprevious') options.previous = false
    const feed = changecast(db, options)
    feed.on('*', () => {
      delivered++
    })
    dispose = () => feed.close()
  }
  await db.open()
  return {
    db,
    delivered: () => delivered,
    async close() {
      dispose()
      db.close()
      await Dexie.delete(name)
    },
  }
}
