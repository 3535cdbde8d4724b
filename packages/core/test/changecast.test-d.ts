import Dexie, { type EntityTable, type Table } from 'dexie'
import { describe, expectTypeOf, it } from 'vitest'
import {
  changecast,
  type ChangeBatch,
  type ChangeEvent,
  type CreateEvent,
  type DeleteEvent,
  type Feed,
  type Unsubscribe,
  type UpdateEvent,
  type FieldOp,
} from '@changecast/core'

interface Todo {
  id: number
  title: string
  done: boolean
}
interface Note {
  id: string
  text: string
}
type AppDB = Dexie & {
  todos: EntityTable<Todo, 'id'>
  notes: Table<Note, string>
}

const db = new Dexie('types') as AppDB
const feed = changecast(db)

describe('typed feed', () => {
  it('types events of a table from its Dexie table type', () => {
    feed.on('todos', (event) => {
      expectTypeOf(event.value).toEqualTypeOf<Todo | undefined>()
      expectTypeOf(event.previous).toEqualTypeOf<Todo | undefined>()
      expectTypeOf(event.key).toEqualTypeOf<number>()
      expectTypeOf(event.table).toEqualTypeOf<'todos'>()
    })
    feed.on('notes:abc', (event) => {
      expectTypeOf(event.value).toEqualTypeOf<Note | undefined>()
      expectTypeOf(event.key).toEqualTypeOf<string>()
    })
  })

  it('narrows events by type: a create and an update have a value, an update its changes', () => {
    feed.on('todos', (event) => {
      if (event.type === 'create') {
        expectTypeOf(event.value).toEqualTypeOf<Todo>()
        expectTypeOf(event.previous).toEqualTypeOf<undefined>()
      } else if (event.type === 'update') {
        expectTypeOf(event.value).toEqualTypeOf<Todo>()
        expectTypeOf(event.changes).toEqualTypeOf<Record<string, unknown>>()
        expectTypeOf(event.previous).toEqualTypeOf<Todo | undefined>()
        // A field update's Dexie modifications (update(), modify(), upsert()); absent for put().
        expectTypeOf(event.ops).toEqualTypeOf<Record<string, FieldOp> | undefined>()
        expectTypeOf<FieldOp>().toEqualTypeOf<
          { add: number | unknown[] } | { remove: number | unknown[] } | { replacePrefix: [string, string] }
        >()
      } else {
        expectTypeOf(event.type).toEqualTypeOf<'delete'>()
        expectTypeOf(event.value).toEqualTypeOf<undefined>()
        expectTypeOf(event.previous).toEqualTypeOf<Todo | undefined>()
      }
    })
    feed.on('*', (event) => {
      if (event.type === 'create' && event.table === 'notes') expectTypeOf(event.value).toEqualTypeOf<Note>()
    })
    expectTypeOf<ChangeEvent<Todo, number>>().toEqualTypeOf<
      CreateEvent<Todo, number> | UpdateEvent<Todo, number> | DeleteEvent<Todo, number>
    >()
  })

  it('types filter objects by their table, and narrows "*" events by table name', () => {
    feed.on({ table: 'todos', key: 42, type: ['update', 'delete'] }, (event) => {
      expectTypeOf(event.value).toEqualTypeOf<Todo | undefined>()
    })
    feed.on('*', (event) => {
      if (event.table === 'notes') expectTypeOf(event.value).toEqualTypeOf<Note | undefined>()
      else expectTypeOf(event.value).toEqualTypeOf<Todo | undefined>()
    })
    feed.onBatch((batch) => {
      expectTypeOf(batch.events[0]!.table).toEqualTypeOf<'todos' | 'notes'>()
    })
  })

  it('returns unsubscribe functions and exposes the origin', () => {
    expectTypeOf(feed.on('todos', () => {})).toEqualTypeOf<Unsubscribe>()
    expectTypeOf(feed.origin).toEqualTypeOf<string>()
  })

  it('rejects unknown tables, wrong key types and unknown event types at compile time', () => {
    // @ts-expect-error -- no such table
    feed.on('nope', () => {})
    // @ts-expect-error -- todos keys are numbers
    feed.on({ table: 'todos', key: 'x' }, () => {})
    // @ts-expect-error -- not an event type
    feed.on({ table: 'todos', type: 'created' }, () => {})
    // @ts-expect-error -- not a source
    feed.on({ source: 'server' }, () => {})
    // @ts-expect-error -- unknown option
    changecast(db, { tabels: ['todos'] })
  })
})

describe('untyped database', () => {
  it('accepts any table name with unknown values', () => {
    const plain = new Dexie('plain')
    plain.version(1).stores({ items: 'id' })
    const untyped = changecast(plain)
    expectTypeOf(untyped).toEqualTypeOf<Feed>()
    untyped.on('items', (event) => {
      expectTypeOf(event.value).toEqualTypeOf<unknown>()
    })
    untyped.onBatch((batch) => {
      expectTypeOf(batch).toMatchTypeOf<ChangeBatch<ChangeEvent>>()
    })
  })
})
