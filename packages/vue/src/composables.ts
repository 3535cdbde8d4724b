import {
  onScopeDispose,
  readonly,
  shallowRef,
  toValue,
  watch,
  type MaybeRefOrGetter,
  type Ref,
  type ShallowRef,
} from 'vue'
import {
  changesStore,
  entityStateStore,
  entityStore,
  rejectionsStore,
  tableStore,
  type ChangeFilter,
  type EntityState,
  type EventOf,
  type ExternalStore,
  type Feed,
  type KeyOf,
  type RegisteredTables,
  type TableName,
  type TableQuery,
  type Topic,
  type ValueOf,
} from '@changecast/core'
import { syncOf, type SyncController, type SyncRejection, type SyncStatus } from '@changecast/core'
import { useFeed } from './plugin.js'

/** Options every composable accepts. */
export interface FeedOption<Tables> {
  /** The feed to use instead of the one installed with `changecastPlugin`. */
  feed?: Feed<Tables>
}

const identity = (value: unknown): string => JSON.stringify(value) ?? String(typeof value)

/**
 * Follows the store that `make()` returns for the current parameters: a new store (and
 * subscription) whenever they change, none once the effect scope is disposed.
 */
function follow<T>(initial: T, parameters: () => unknown, make: () => ExternalStore<T>): Readonly<Ref<T>> {
  const state: ShallowRef<T> = shallowRef(initial)
  let stop: (() => void) | undefined
  const start = () => {
    stop?.()
    const store = make()
    const update = () => {
      state.value = store.getSnapshot()
    }
    stop = store.subscribe(update)
    update()
  }
  watch(parameters, start, { immediate: true })
  onScopeDispose(() => {
    stop?.()
    stop = undefined
  })
  return readonly(state) as Readonly<Ref<T>>
}

/**
 * A readonly ref to one entity's current value (`undefined` while loading and when it
 * does not exist; {@link useEntityState} tells the two apart), read once from Dexie and kept current from change events of that key.
 * `table` and `key` may be refs or getters: changing them follows the new entity.
 *
 * @example
 * const todo = useEntity('todos', () => props.id)
 */
export function useEntity<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  table: MaybeRefOrGetter<N>,
  key: MaybeRefOrGetter<KeyOf<Tables, N>>,
  options: FeedOption<Tables> = {},
): Readonly<Ref<ValueOf<Tables, N> | undefined>> {
  const feed = useFeed(options.feed, 'useEntity')
  return follow<ValueOf<Tables, N> | undefined>(
    undefined,
    () => [toValue(table), identity(toValue(key))],
    () => entityStore(feed, toValue(table), toValue(key)),
  )
}

/**
 * A readonly ref to the state of one entity, for when "still loading" and "does not exist"
 * must look different: `{ status: 'loading' }`, `{ status: 'found', value }`,
 * `{ status: 'missing' }` or `{ status: 'error', error }`. Kept current like
 * {@link useEntity}; `table` and `key` may be refs or getters.
 *
 * @example
 * const todo = useEntityState('todos', () => props.id)
 * // <p v-if="todo.status === 'missing'">No such todo</p>
 */
export function useEntityState<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  table: MaybeRefOrGetter<N>,
  key: MaybeRefOrGetter<KeyOf<Tables, N>>,
  options: FeedOption<Tables> = {},
): Readonly<Ref<EntityState<ValueOf<Tables, N>>>> {
  const feed = useFeed(options.feed, 'useEntityState')
  return follow<EntityState<ValueOf<Tables, N>>>(
    { status: 'loading', value: undefined },
    () => [toValue(table), identity(toValue(key))],
    () => entityStateStore(feed, toValue(table), toValue(key)),
  )
}

/**
 * A readonly ref to a live array of a table's rows (optionally filtered, sorted,
 * limited), kept current from change events without re-querying the table. A change to a
 * row outside the list does not trigger. Parameters may be refs or getters.
 *
 * @example
 * const open = useTable('todos', () => ({ where: { done: false }, orderBy: 'title' }))
 */
export function useTable<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  table: MaybeRefOrGetter<N>,
  query: MaybeRefOrGetter<TableQuery<ValueOf<Tables, N>>> = {},
  options: FeedOption<Tables> = {},
): Readonly<Ref<readonly ValueOf<Tables, N>[]>> {
  const feed = useFeed(options.feed, 'useTable')
  return follow<readonly ValueOf<Tables, N>[]>(
    [],
    () => {
      const { where, orderBy, reverse, limit } = toValue(query)
      return [toValue(table), typeof where === 'function' ? where : identity(where), orderBy, reverse, limit]
    },
    () => tableStore(feed, toValue(table), { ...toValue(query) }),
  )
}

/**
 * A readonly ref to the most recent events matching a topic or filter, newest first.
 *
 * @example
 * const recent = useChanges({ table: 'todos' }, { limit: 20 })
 */
export function useChanges<Tables = RegisteredTables>(
  filter: MaybeRefOrGetter<'*'>,
  options?: FeedOption<Tables> & { limit?: number },
): Readonly<Ref<readonly EventOf<Tables>[]>>
export function useChanges<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  filter: MaybeRefOrGetter<Topic<Tables, N> | ChangeFilter<Tables, N>>,
  options?: FeedOption<Tables> & { limit?: number },
): Readonly<Ref<readonly EventOf<Tables, N>[]>>
export function useChanges<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  filter: MaybeRefOrGetter<Topic<Tables, N> | ChangeFilter<Tables, N>>,
  options: FeedOption<Tables> & { limit?: number } = {},
): Readonly<Ref<readonly EventOf<Tables, N>[]>> {
  const feed = useFeed(options.feed, 'useChanges')
  return follow(
    [] as readonly EventOf<Tables, N>[],
    () => identity(toValue(filter)),
    () => changesStore(feed, toValue(filter), { limit: options.limit }),
  )
}

/**
 * Runs `handler` for every event matching a topic or filter, until the effect scope
 * (component) is disposed. The filter may be a ref or getter: changing it resubscribes.
 *
 * @example
 * useChangeEvent({ table: 'todos', source: 'tab' }, (e) => toast(`Updated elsewhere: ${e.key}`))
 */
export function useChangeEvent<Tables = RegisteredTables>(
  filter: MaybeRefOrGetter<'*'>,
  handler: (event: EventOf<Tables>) => void,
  options?: FeedOption<Tables>,
): void
export function useChangeEvent<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  filter: MaybeRefOrGetter<Topic<Tables, N> | ChangeFilter<Tables, N>>,
  handler: (event: EventOf<Tables, N>) => void,
  options?: FeedOption<Tables>,
): void
export function useChangeEvent<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  filter: MaybeRefOrGetter<Topic<Tables, N> | ChangeFilter<Tables, N>>,
  handler: (event: EventOf<Tables, N>) => void,
  options: FeedOption<Tables> = {},
): void {
  const feed = useFeed(options.feed, 'useChangeEvent')
  let off: (() => void) | undefined
  watch(
    () => identity(toValue(filter)),
    () => {
      off?.()
      off = feed.on(toValue(filter), (event) => handler(event))
    },
    { immediate: true },
  )
  onScopeDispose(() => {
    off?.()
    off = undefined
  })
}

/**
 * A readonly ref to the server sync status: `state` (`idle`, `pushing`, `pulling`,
 * `offline` while retrying, `error` when stopped, `closed`), `outbox` (local commits
 * waiting for the server), `setAside`, `rejections`, `lastSyncedRev` (the newest local
 * commit the server answered), `serverRev` (the server revision this client is up to date
 * with), `leader`, `paused` and `lastError`. In a tab that does not lead, the leader's.
 * @throws {ChangecastStateError} when the feed has no `sync` option.
 *
 * @example
 * const status = useSyncStatus()
 * // template: {{ status.state }} · {{ status.outbox }} waiting
 */
export function useSyncStatus<Tables = RegisteredTables>(options: FeedOption<Tables> = {}): Readonly<Ref<SyncStatus>> {
  const sync = useSync(options, 'useSyncStatus')
  const status = shallowRef(sync.status)
  const off = sync.subscribe(() => {
    status.value = sync.status
  })
  onScopeDispose(off)
  return readonly(status)
}

/**
 * A readonly ref to the server's rejections of this client's commits not dismissed yet,
 * oldest first — a conflict inbox, the same in every tab and kept across reloads. Dismiss
 * one with `feed.sync.dismiss(rev)`.
 * @throws {ChangecastStateError} when the feed has no `sync` option.
 *
 * @example
 * const rejections = useRejections()
 * // template: <p v-for="r in rejections" :key="r.rev">{{ r.reason }}</p>
 */
export function useRejections<Tables = RegisteredTables>(
  options: FeedOption<Tables> = {},
): Readonly<Ref<readonly SyncRejection[]>> {
  const store = rejectionsStore(useSync(options, 'useRejections'))
  const rejections = shallowRef(store.getSnapshot())
  const off = store.subscribe(() => {
    rejections.value = store.getSnapshot()
  })
  onScopeDispose(off)
  return readonly(rejections) as Readonly<Ref<readonly SyncRejection[]>>
}

function useSync<Tables>(options: FeedOption<Tables>, name: string): SyncController {
  return syncOf(useFeed(options.feed, name), name)
}
