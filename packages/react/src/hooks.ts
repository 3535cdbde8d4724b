import { useEffect, useLayoutEffect, useMemo, useRef, useSyncExternalStore } from 'react'
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
import { useFeed } from './context.js'

/** Options every hook accepts. */
export interface FeedOption<Tables> {
  /** The feed to use instead of the nearest `<ChangecastProvider>`'s. */
  feed?: Feed<Tables>
}

// useLayoutEffect warns during server rendering; the handler ref only matters in the browser.
const useIsomorphicLayoutEffect = typeof document === 'undefined' ? useEffect : useLayoutEffect

const identity = (value: unknown): string => JSON.stringify(value) ?? String(typeof value)

function useStore<T>(store: ExternalStore<T>): T {
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot)
}

/**
 * The current value of one entity, or `undefined` while loading and when it does not
 * exist ({@link useEntityState} tells the two apart). Read from Dexie once, then kept current from change events (local, other tabs,
 * the server). The component re-renders only when *that* key changes.
 *
 * @example
 * function TodoTitle({ id }: { id: number }) {
 *   const todo = useEntity('todos', id)
 *   return <span>{todo?.title ?? '…'}</span>
 * }
 */
export function useEntity<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  table: N,
  key: KeyOf<Tables, N>,
  options: FeedOption<Tables> = {},
): ValueOf<Tables, N> | undefined {
  const feed = useFeed(options.feed, 'useEntity')
  const keyId = identity(key)
  // Dependencies: the key is compared by value
  const store = useMemo(() => entityStore(feed, table, key), [feed, table, keyId])
  return useStore(store)
}

/**
 * The state of one entity, for when "still loading" and "does not exist" must look
 * different: `{ status: 'loading' }`, `{ status: 'found', value }`, `{ status: 'missing' }`
 * or `{ status: 'error', error }`. Kept current like {@link useEntity}.
 *
 * @example
 * function TodoPage({ id }: { id: number }) {
 *   const todo = useEntityState('todos', id)
 *   if (todo.status === 'loading') return <Spinner />
 *   if (todo.status !== 'found') return <p>No such todo</p>
 *   return <h1>{todo.value.title}</h1>
 * }
 */
export function useEntityState<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  table: N,
  key: KeyOf<Tables, N>,
  options: FeedOption<Tables> = {},
): EntityState<ValueOf<Tables, N>> {
  const feed = useFeed(options.feed, 'useEntityState')
  const keyId = identity(key)
  // Dependencies: the key is compared by value
  const store = useMemo(() => entityStateStore(feed, table, key), [feed, table, keyId])
  return useStore(store)
}

/**
 * A live array of a table's rows (optionally filtered, sorted, limited), kept current
 * from change events without re-querying the table. A change to a row outside the list
 * does not re-render; rows that did not change keep their identity (`React.memo` rows
 * stay put). Pass a stable function (`useCallback`) when `where` is a predicate.
 *
 * @example
 * const open = useTable('todos', { where: { done: false }, orderBy: 'title', limit: 50 })
 */
export function useTable<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  table: N,
  query: TableQuery<ValueOf<Tables, N>> = {},
  options: FeedOption<Tables> = {},
): readonly ValueOf<Tables, N>[] {
  const feed = useFeed(options.feed, 'useTable')
  const { where, orderBy, reverse, limit } = query
  const whereId = typeof where === 'function' ? where : identity(where)
  const store = useMemo(
    () => tableStore(feed, table, { where, orderBy, reverse, limit }),
    // Dependencies: `where` objects are compared by value
    [feed, table, whereId, orderBy, reverse, limit],
  )
  return useStore(store)
}

/**
 * The most recent events matching a topic or filter, newest first (an activity feed).
 *
 * @example
 * const recent = useChanges({ table: 'todos', type: ['create', 'delete'] }, { limit: 20 })
 */
export function useChanges<Tables = RegisteredTables>(
  filter: '*',
  options?: FeedOption<Tables> & { limit?: number },
): readonly EventOf<Tables>[]
export function useChanges<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  filter: Topic<Tables, N> | ChangeFilter<Tables, N>,
  options?: FeedOption<Tables> & { limit?: number },
): readonly EventOf<Tables, N>[]
export function useChanges<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  filter: Topic<Tables, N> | ChangeFilter<Tables, N>,
  options: FeedOption<Tables> & { limit?: number } = {},
): readonly EventOf<Tables, N>[] {
  const feed = useFeed(options.feed, 'useChanges')
  const filterId = identity(filter)
  const { limit } = options
  // Dependencies: the filter is compared by value
  const store = useMemo(() => changesStore(feed, filter, { limit }), [feed, filterId, limit])
  return useStore(store)
}

/**
 * Runs `handler` for every event matching a topic or filter (a side effect: a toast, a
 * sound, an analytics call). The latest `handler` is always the one called; changing it
 * does not resubscribe.
 *
 * @example
 * useChangeEvent({ table: 'todos', source: 'tab' }, (e) => toast(`Updated in another tab: ${e.key}`))
 */
export function useChangeEvent<Tables = RegisteredTables>(
  filter: '*',
  handler: (event: EventOf<Tables>) => void,
  options?: FeedOption<Tables>,
): void
export function useChangeEvent<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  filter: Topic<Tables, N> | ChangeFilter<Tables, N>,
  handler: (event: EventOf<Tables, N>) => void,
  options?: FeedOption<Tables>,
): void
export function useChangeEvent<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  filter: Topic<Tables, N> | ChangeFilter<Tables, N>,
  handler: (event: EventOf<Tables, N>) => void,
  options: FeedOption<Tables> = {},
): void {
  const feed = useFeed(options.feed, 'useChangeEvent')
  const latest = useRef(handler)
  useIsomorphicLayoutEffect(() => {
    latest.current = handler
  })
  const filterId = identity(filter)
  useEffect(
    () => feed.on(filter, (event) => latest.current(event)),
    // Dependencies: the filter is compared by value
    [feed, filterId],
  )
}

/**
 * The server sync status, re-rendering when it changes: `state` (`idle`, `pushing`,
 * `pulling`, `offline` while retrying, `error` when stopped, `closed`), `outbox` (local
 * commits waiting for the server), `setAside`, `rejections`, `lastSyncedRev` (the newest
 * local commit the server answered), `serverRev` (the server revision this client is up to
 * date with), `leader` (this tab talks to the server), `paused` and `lastError`. In a tab
 * that does not lead, it shows the leader's status.
 * @throws {ChangecastStateError} when the feed has no `sync` option.
 *
 * @example
 * const { state, outbox } = useSyncStatus()
 * return <span>{state} · {outbox} waiting</span>
 */
export function useSyncStatus<Tables = RegisteredTables>(options: FeedOption<Tables> = {}): SyncStatus {
  const sync = useSync(options, 'useSyncStatus')
  return useSyncExternalStore(
    (listener) => sync.subscribe(listener),
    () => sync.status,
    () => sync.status,
  )
}

/**
 * The server's rejections of this client's commits not dismissed yet, oldest first — a
 * conflict inbox, the same in every tab and kept across reloads. Dismiss one with
 * `feed.sync.dismiss(rev)`.
 * @throws {ChangecastStateError} when the feed has no `sync` option.
 *
 * @example
 * const rejections = useRejections()
 * const { sync } = useFeed()
 * return rejections.map((r) => <p key={r.rev}>{r.reason} <button onClick={() => sync!.dismiss(r.rev)}>OK</button></p>)
 */
export function useRejections<Tables = RegisteredTables>(options: FeedOption<Tables> = {}): readonly SyncRejection[] {
  const sync = useSync(options, 'useRejections')
  const store = useMemo(() => rejectionsStore(sync), [sync])
  return useStore(store)
}

function useSync<Tables>(options: FeedOption<Tables>, name: string): SyncController {
  return syncOf(useFeed(options.feed, name), name)
}
