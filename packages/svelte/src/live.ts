import { getContext, hasContext, setContext } from 'svelte'
import { createSubscriber } from 'svelte/reactivity'
import {
  ChangecastStateError,
  changesStore,
  entityStateStore,
  entityStore,
  parametersKey,
  rejectionsStore,
  syncOf,
  syncStatusStore,
  tableStore,
  type AnyTables,
  type ChangeFilter,
  type EntityState,
  type EventOf,
  type ExternalStore,
  type Feed,
  type KeyOf,
  type RegisteredTables,
  type SyncRejection,
  type SyncStatus,
  type TableName,
  type TableQuery,
  type Topic,
  type ValueOf,
} from '@changecast/core'

/** A value, or a getter of it (`() => id`): reading it in `current` follows its changes. */
export type MaybeGetter<T> = T | (() => T)

/** Options every binding accepts. */
export interface FeedOption<Tables> {
  /** The feed to use instead of the one set with {@link setChangecastContext}. */
  feed?: Feed<Tables>
}

/**
 * A live value: `current` for runes (reading it in a template, `$derived` or `$effect`
 * subscribes, and the subscription ends with the last reader), and the store contract for
 * `$value` in components or `get(value)`.
 */
export interface Live<T> {
  /** The current value; reactive where Svelte tracks reads. */
  readonly current: T
  /** The Svelte store contract: `run` now with the current value, then after every change. */
  subscribe(run: (value: T) => void): () => void
}

const KEY = Symbol('changecast feed')

/**
 * Makes a feed available to this component and its children (call it during component
 * initialisation, e.g. in the root component's `<script>`).
 *
 * @example
 * setChangecastContext(feed)
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a feed of any database type
export function setChangecastContext(feed: Feed<any>): void {
  setContext(KEY, feed)
}

/**
 * The feed given as argument, else the one set with {@link setChangecastContext} (read
 * during component initialisation).
 * @throws {ChangecastStateError} when there is neither.
 */
export function getFeed<Tables = RegisteredTables>(feed?: Feed<Tables>, binding = 'getFeed'): Feed<Tables> {
  const found = feed ?? (inComponent() && hasContext(KEY) ? getContext<Feed<AnyTables>>(KEY) : undefined)
  if (!found) {
    throw new ChangecastStateError(
      `${binding}(): no Changecast feed. Call setChangecastContext(feed) in a parent component, or pass { feed }.`,
    )
  }
  // The context holds one feed of any tables; `Register` (or the caller's type) says which.
  return found as unknown as Feed<Tables>
}

/** `hasContext` throws outside component initialisation; that means "no context" here. */
function inComponent(): boolean {
  try {
    hasContext(KEY)
    return true
  } catch {
    return false
  }
}

const read = <T>(value: MaybeGetter<T>): T => (typeof value === 'function' ? (value as () => T)() : value)
const identity = parametersKey

/**
 * A {@link Live} over the store `make()` returns for the current parameters. Reading
 * `current` reads the parameters (tracked, so a getter's change is seen) and moves to a new
 * store when they changed by value; the subscription follows it.
 */
function live<T>(parameters: () => unknown, make: () => ExternalStore<T>): Live<T> {
  let id = identity(parameters())
  let store = make()
  let forward: (() => void) | undefined
  let stop: (() => void) | undefined
  const attach = (): void => {
    stop?.()
    stop = forward ? store.subscribe(forward) : undefined
  }
  const track = createSubscriber((update) => {
    forward = update
    attach()
    return () => {
      forward = undefined
      attach()
    }
  })
  const refresh = (): void => {
    const next = identity(parameters())
    if (next === id) return
    id = next
    store = make()
    attach()
  }
  return {
    get current() {
      refresh()
      track()
      return store.getSnapshot()
    },
    subscribe(run) {
      refresh()
      const followed = store
      const notify = () => run(followed.getSnapshot())
      const off = followed.subscribe(notify)
      notify()
      return off
    },
  }
}

/**
 * One entity's current value (`undefined` while loading and when it does not exist;
 * {@link entityState} tells the two apart), read once from Dexie and kept current from
 * change events of that key only. `table` and `key` may be getters.
 *
 * @example
 * const todo = entity('todos', () => id)
 * // {todo.current?.title}   or, as a store: {$todo?.title}
 */
export function entity<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  table: MaybeGetter<N>,
  key: MaybeGetter<KeyOf<Tables, N>>,
  options: FeedOption<Tables> = {},
): Live<ValueOf<Tables, N> | undefined> {
  const feed = getFeed(options.feed, 'entity')
  return live(
    () => [read(table), read(key)],
    () => entityStore(feed, read(table), read(key)),
  )
}

/**
 * One entity's state, for when "still loading" and "does not exist" must look different:
 * `{ status: 'loading' }`, `{ status: 'found', value }`, `{ status: 'missing' }` or
 * `{ status: 'error', error }`.
 *
 * @example
 * const todo = entityState('todos', () => id)
 * // {#if todo.current.status === 'missing'}No such todo{/if}
 */
export function entityState<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  table: MaybeGetter<N>,
  key: MaybeGetter<KeyOf<Tables, N>>,
  options: FeedOption<Tables> = {},
): Live<EntityState<ValueOf<Tables, N>>> {
  const feed = getFeed(options.feed, 'entityState')
  return live(
    () => [read(table), read(key)],
    () => entityStateStore(feed, read(table), read(key)),
  )
}

/**
 * A live array of a table's rows (optionally filtered, sorted, limited), kept current from
 * change events without re-querying. Rows that did not change keep their identity, so a
 * keyed `{#each}` keeps their DOM. `table` and `query` may be getters.
 *
 * @example
 * const open = table('todos', { where: { done: false }, orderBy: 'title' })
 * // {#each open.current as todo (todo.id)}<li>{todo.title}</li>{/each}
 */
export function table<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  name: MaybeGetter<N>,
  query: MaybeGetter<TableQuery<ValueOf<Tables, N>>> = {},
  options: FeedOption<Tables> = {},
): Live<readonly ValueOf<Tables, N>[]> {
  const feed = getFeed(options.feed, 'table')
  return live(
    () => [read(name), read(query)],
    () => tableStore(feed, read(name), { ...read(query) }),
  )
}

/**
 * The most recent events matching a topic or filter, newest first.
 *
 * @example
 * const recent = changes({ table: 'todos' }, { limit: 20 })
 */
export function changes<Tables = RegisteredTables>(
  filter: MaybeGetter<'*'>,
  options?: FeedOption<Tables> & { limit?: number },
): Live<readonly EventOf<Tables>[]>
export function changes<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  filter: MaybeGetter<Topic<Tables, N> | ChangeFilter<Tables, N>>,
  options?: FeedOption<Tables> & { limit?: number },
): Live<readonly EventOf<Tables, N>[]>
export function changes<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  filter: MaybeGetter<Topic<Tables, N> | ChangeFilter<Tables, N>>,
  options: FeedOption<Tables> & { limit?: number } = {},
): Live<readonly EventOf<Tables, N>[]> {
  const feed = getFeed(options.feed, 'changes')
  return live(
    () => read(filter),
    () => changesStore(feed, read(filter), { limit: options.limit }),
  )
}

/**
 * The server sync status (`state`, `outbox`, `serverRev`…; see the core README). In a tab
 * that does not lead the sync, it mirrors the leader's.
 * @throws {ChangecastStateError} when the feed has no `sync` option.
 */
export function syncStatus<Tables = RegisteredTables>(options: FeedOption<Tables> = {}): Live<SyncStatus> {
  const sync = syncOf(getFeed(options.feed, 'syncStatus'), 'syncStatus')
  return live(
    () => 0,
    () => syncStatusStore(sync),
  )
}

/**
 * The server's rejections of this client's commits not dismissed yet, oldest first.
 * Dismiss one with `feed.sync.dismiss(rev)`.
 * @throws {ChangecastStateError} when the feed has no `sync` option.
 */
export function rejections<Tables = RegisteredTables>(
  options: FeedOption<Tables> = {},
): Live<readonly SyncRejection[]> {
  const sync = syncOf(getFeed(options.feed, 'rejections'), 'rejections')
  return live(
    () => 0,
    () => rejectionsStore(sync),
  )
}
