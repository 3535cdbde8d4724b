import Dexie, { type EntityTable } from 'dexie'
import { describe, expectTypeOf, it } from 'vitest'
import { changecast, type ChangeEvent, type SyncRejection, type SyncStatus } from '@changecast/core'
import {
  changes,
  entity,
  entityState,
  rejections,
  syncStatus,
  table,
  type EntityState,
  type Live,
} from '@changecast/svelte'

interface Todo {
  id: number
  title: string
  done: boolean
}
const db = new Dexie('types') as Dexie & { todos: EntityTable<Todo, 'id'> }
const feed = changecast(db)

describe('@changecast/svelte types', () => {
  it('types bindings from the feed passed to them', () => {
    expectTypeOf(entity('todos', () => 1, { feed })).toEqualTypeOf<Live<Todo | undefined>>()
    expectTypeOf(entityState('todos', 1, { feed }).current).toEqualTypeOf<EntityState<Todo>>()
    expectTypeOf(table('todos', { where: { done: false }, orderBy: 'title' }, { feed }).current).toEqualTypeOf<
      readonly Todo[]
    >()
    expectTypeOf(changes('todos', { feed }).current[0]!.value).toEqualTypeOf<Todo | undefined>()
    entity('todos', 1, { feed }).subscribe((value) => expectTypeOf(value).toEqualTypeOf<Todo | undefined>())
  })

  it('rejects unknown tables, wrong key types and unknown fields', () => {
    // @ts-expect-error -- no such table
    entity('nope', 1, { feed })
    // @ts-expect-error -- todos keys are numbers
    entity('todos', 'one', { feed })
    // @ts-expect-error -- where must use todo fields
    table('todos', { where: { nope: 1 } }, { feed })
    // @ts-expect-error -- orderBy must name a field of a todo
    table('todos', { orderBy: 'titel' }, { feed })
  })

  it('accepts any table, with unknown values, without a registered or passed feed', () => {
    expectTypeOf(entity('anything', 1).current).toEqualTypeOf<unknown>()
    expectTypeOf(changes('*').current).toEqualTypeOf<readonly (ChangeEvent<unknown> & { table: string })[]>()
  })

  it('types the sync bindings', () => {
    expectTypeOf(syncStatus({ feed }).current).toEqualTypeOf<SyncStatus>()
    expectTypeOf(rejections({ feed }).current).toEqualTypeOf<readonly SyncRejection[]>()
  })
})
