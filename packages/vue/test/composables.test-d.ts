import Dexie, { type EntityTable } from 'dexie'
import { describe, expectTypeOf, it } from 'vitest'
import { changecast, type ChangeEvent, type SyncRejection, type SyncStatus } from '@changecast/core'
import type { Ref } from 'vue'
import {
  useChangeEvent,
  useChanges,
  useEntity,
  useEntityState,
  useRejections,
  useSyncStatus,
  useTable,
  type EntityState,
} from '@changecast/vue'

interface Todo {
  id: number
  title: string
  done: boolean
}
const db = new Dexie('types') as Dexie & { todos: EntityTable<Todo, 'id'> }
const feed = changecast(db)

describe('@changecast/vue types', () => {
  it('types hooks from the feed passed to them', () => {
    expectTypeOf(useEntity('todos', () => 1, { feed })).toEqualTypeOf<Readonly<Ref<Todo | undefined>>>()
    expectTypeOf(useTable('todos', { where: { done: false }, orderBy: 'title' }, { feed }).value).toEqualTypeOf<
      readonly Todo[]
    >()
    expectTypeOf(useChanges('todos', { feed }).value[0]!.value).toEqualTypeOf<Todo | undefined>()
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
  })

  it('types useEntityState as a ref to a union on status', () => {
    const state = useEntityState('todos', () => 1, { feed })
    expectTypeOf(state).toEqualTypeOf<Readonly<Ref<EntityState<Todo>>>>()
    if (state.value.status === 'found') expectTypeOf(state.value.value).toEqualTypeOf<Todo>()
  })

  it('accepts any table, with unknown values, without a registered or passed feed', () => {
    expectTypeOf(useEntity('anything', 1).value).toEqualTypeOf<unknown>()
    expectTypeOf(useChanges('*').value).toEqualTypeOf<readonly (ChangeEvent<unknown> & { table: string })[]>()
  })

  it('types the sync composables', () => {
    expectTypeOf(useSyncStatus({ feed }).value).toEqualTypeOf<SyncStatus>()
    expectTypeOf(useRejections({ feed }).value).toEqualTypeOf<readonly SyncRejection[]>()
  })
})
