import Dexie, { type EntityTable } from 'dexie'
import type { Accessor } from 'solid-js'
import { describe, expectTypeOf, it } from 'vitest'
import { changecast, type ChangeEvent, type SyncRejection, type SyncStatus } from '@changecast/core'
import {
  createChangeEvent,
  createChanges,
  createEntity,
  createEntityState,
  createRejections,
  createSyncStatus,
  createTable,
  type EntityState,
} from '@changecast/solid'

interface Todo {
  id: number
  title: string
  done: boolean
}
const db = new Dexie('types') as Dexie & { todos: EntityTable<Todo, 'id'> }
const feed = changecast(db)

describe('@changecast/solid types', () => {
  it('types primitives from the feed passed to them', () => {
    expectTypeOf(createEntity('todos', () => 1, { feed })).toEqualTypeOf<Accessor<Todo | undefined>>()
    expectTypeOf(createEntityState('todos', 1, { feed })).toEqualTypeOf<Accessor<EntityState<Todo>>>()
    expectTypeOf(createTable('todos', { where: { done: false }, orderBy: 'title' }, { feed })).toEqualTypeOf<
      Accessor<readonly Todo[]>
    >()
    expectTypeOf(createChanges('todos', { feed })()[0]!.value).toEqualTypeOf<Todo | undefined>()
    createChangeEvent({ table: 'todos', type: 'update' }, (event) => expectTypeOf(event.key).toEqualTypeOf<number>(), {
      feed,
    })
  })

  it('rejects unknown tables, wrong key types and unknown fields', () => {
    // @ts-expect-error -- no such table
    createEntity('nope', 1, { feed })
    // @ts-expect-error -- todos keys are numbers
    createEntity('todos', 'one', { feed })
    // @ts-expect-error -- where must use todo fields
    createTable('todos', { where: { nope: 1 } }, { feed })
    // @ts-expect-error -- orderBy must name a field of a todo
    createTable('todos', { orderBy: 'titel' }, { feed })
  })

  it('accepts any table, with unknown values, without a registered or passed feed', () => {
    expectTypeOf(createEntity('anything', 1)).toEqualTypeOf<Accessor<unknown>>()
    expectTypeOf(createChanges('*')).toEqualTypeOf<Accessor<readonly (ChangeEvent<unknown> & { table: string })[]>>()
  })

  it('types the sync primitives', () => {
    expectTypeOf(createSyncStatus({ feed })).toEqualTypeOf<Accessor<SyncStatus>>()
    expectTypeOf(createRejections({ feed })).toEqualTypeOf<Accessor<readonly SyncRejection[]>>()
  })
})
