import Dexie, { type EntityTable } from 'dexie'
import { describe, expectTypeOf, it } from 'vitest'
import { changecast, type ChangeEvent, type SyncRejection, type SyncStatus } from '@changecast/core'
import {
  useChangeEvent,
  useChanges,
  useEntity,
  useEntityState,
  useRejections,
  useSyncStatus,
  useTable,
  type EntityState,
} from '@changecast/react'

interface Todo {
  id: number
  title: string
  done: boolean
  author?: { name: string; address: { city: string } }
  tags?: string[]
}
const db = new Dexie('types') as Dexie & { todos: EntityTable<Todo, 'id'> }
const feed = changecast(db)

describe('@changecast/react types', () => {
  it('types hooks from the feed passed to them', () => {
    expectTypeOf(useEntity('todos', 1, { feed })).toEqualTypeOf<Todo | undefined>()
    expectTypeOf(useTable('todos', { where: { done: false }, orderBy: 'title' }, { feed })).toEqualTypeOf<
      readonly Todo[]
    >()
    expectTypeOf(useChanges('todos', { feed })[0]!.value).toEqualTypeOf<Todo | undefined>()
    useChangeEvent({ table: 'todos', type: 'update' }, (event) => expectTypeOf(event.key).toEqualTypeOf<number>(), {
      feed,
    })
  })

  it('rejects unknown tables and wrong key types', () => {
    // @ts-expect-error -- no such table
    useEntity('nope', 1, { feed })
    // @ts-expect-error -- todos keys are numbers
    useEntity('todos', 'one', { feed })
    // @ts-expect-error -- where must use todo fields
    useTable('todos', { where: { nope: 1 } }, { feed })
    // @ts-expect-error -- orderBy must name a field of a todo
    useTable('todos', { orderBy: 'titel' }, { feed })
    // @ts-expect-error -- nor a path into an array or a string
    useTable('todos', { orderBy: 'tags.length' }, { feed })
  })

  it('types orderBy as the fields of the value and dotted paths into nested objects', () => {
    useTable('todos', { orderBy: 'author.address.city' }, { feed })
    useTable('todos', { orderBy: 'author.name' }, { feed })
    useTable('anything', { orderBy: 'whatever.it.is' })
  })

  it('types useEntityState as a union on status', () => {
    const state = useEntityState('todos', 1, { feed })
    expectTypeOf(state).toEqualTypeOf<EntityState<Todo>>()
    if (state.status === 'found') expectTypeOf(state.value).toEqualTypeOf<Todo>()
    else expectTypeOf(state.value).toEqualTypeOf<undefined>()
    if (state.status === 'error') expectTypeOf(state.error).toEqualTypeOf<unknown>()
  })

  it('accepts any table, with unknown values, without a registered or passed feed', () => {
    expectTypeOf(useEntity('anything', 1)).toEqualTypeOf<unknown>()
    expectTypeOf(useChanges('*')).toEqualTypeOf<readonly (ChangeEvent<unknown> & { table: string })[]>()
  })

  it('types the sync hooks', () => {
    expectTypeOf(useSyncStatus({ feed })).toEqualTypeOf<SyncStatus>()
    expectTypeOf(useRejections({ feed })).toEqualTypeOf<readonly SyncRejection[]>()
  })
})
