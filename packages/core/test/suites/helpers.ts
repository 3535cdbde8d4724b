import Dexie, { type EntityTable, type Table } from 'dexie'
import { changecast, type ChangeBatch, type ChangecastOptions, type ChangeEvent, type Feed } from '@changecast/core'
import type { TableMap } from '@changecast/core'

export interface Todo {
  id: number
  title: string
  done: boolean
  tags?: string[]
  meta?: { priority: number; owner?: string }
}
export interface Note {
  id?: number
  text: string
}
export interface Pair {
  a: string
  b: number
  label: string
}
export interface Doc {
  info: { id: string }
  body: string
}

export type TestDB = Dexie & {
  todos: EntityTable<Todo, 'id'>
  notes: EntityTable<Note, 'id'>
  pairs: Table<Pair, [string, number]>
  docs: Table<Doc, string>
  blobs: Table<{ text: string }, number>
  $meta: Table<{ id: string }, string>
}

let counter = 0

/** A fresh database (unique name) with every key style the suite needs. */
export function createDb(name = 'capture'): TestDB {
  const db = new Dexie(`${name}-${Date.now()}-${++counter}`) as TestDB
  db.version(1).stores({
    todos: 'id, done, *tags',
    notes: '++id',
    pairs: '[a+b]',
    docs: 'info.id',
    blobs: '++',
    $meta: 'id',
  })
  return db
}

/** Records everything a feed delivers. */
export function record<DB extends Dexie>(feed: Feed<TableMap<DB>>) {
  const events: ChangeEvent[] = []
  const batches: ChangeBatch[] = []
  feed.on('*', (event) => events.push(event as ChangeEvent))
  feed.onBatch((batch) => batches.push(batch as ChangeBatch))
  return {
    events,
    batches,
    /** Events reduced to `type table key` strings, for compact assertions. */
    summary: () => events.map((e) => `${e.type} ${e.table} ${JSON.stringify(e.key)}`),
    clear: () => {
      events.length = 0
      batches.length = 0
    },
  }
}

/** A database with a feed and a recorder, opened. */
export async function setup(options?: ChangecastOptions, prepare?: (db: TestDB) => void) {
  const db = createDb()
  prepare?.(db)
  const feed = changecast(db, options)
  const rec = record(feed)
  await db.open()
  return { db, feed, ...rec }
}

export async function destroy(db: Dexie): Promise<void> {
  db.close()
  await Dexie.delete(db.name)
}

export const todo = (id: number, title = `todo ${id}`, extra: Partial<Todo> = {}): Todo => ({
  id,
  title,
  done: false,
  ...extra,
})
