// Type test, compiled on its own by `pnpm typecheck` (module augmentation is global, so it
// cannot share a program with the other type tests): registering a feed types every
// hook and composable without passing the feed.
import Dexie, { type EntityTable } from 'dexie'
import type { Ref } from 'vue'
import { expectTypeOf } from 'vitest'
import { changecast } from '@changecast/core'
import { useEntity as useReactEntity, useTable as useReactTable } from '@changecast/react'
import { useEntity as useVueEntity } from '@changecast/vue'

interface Todo {
  id: number
  title: string
}
const db = new Dexie('types') as Dexie & { todos: EntityTable<Todo, 'id'> }
export const feed = changecast(db)

declare module '@changecast/core' {
  interface Register {
    feed: typeof feed
  }
}

expectTypeOf(useReactEntity('todos', 1)).toEqualTypeOf<Todo | undefined>()
expectTypeOf(useReactTable('todos')).toEqualTypeOf<readonly Todo[]>()
expectTypeOf(useVueEntity('todos', 1)).toEqualTypeOf<Readonly<Ref<Todo | undefined>>>()
// @ts-expect-error -- only registered tables
useReactEntity('nope', 1)
// @ts-expect-error -- todos keys are numbers
useVueEntity('todos', 'one')
