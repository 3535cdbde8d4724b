import {
  createComponent,
  createContext,
  createRenderEffect,
  createSignal,
  onCleanup,
  untrack,
  useContext,
  type Accessor,
  type JSX,
} from 'solid-js'
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

/** A value, or an accessor of it: reading the accessor inside a primitive follows its changes. */
export type MaybeAccessor<T> = T | Accessor<T>

/** Options every primitive accepts. */
export interface FeedOption<Tables> {
  /** The feed to use instead of the nearest `<ChangecastProvider>`'s. */
  feed?: Feed<Tables>
}

const FeedContext = createContext<Feed<AnyTables>>()

/** Props of {@link ChangecastProvider}. */
export interface ChangecastProviderProps<Tables> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a feed of any database type
  feed: Feed<Tables> | Feed<any>
  children?: JSX.Element
}

/**
 * Makes a feed available to every primitive below it.
 *
 * @example
 * <ChangecastProvider feed={feed}><App /></ChangecastProvider>
 */
export function ChangecastProvider<Tables>(props: ChangecastProviderProps<Tables>): JSX.Element {
  return createComponent(FeedContext.Provider, {
    get value() {
      return props.feed as Feed<AnyTables>
    },
    get children() {
      return props.children
    },
  })
}

/**
 * The feed given as argument, else the nearest `<ChangecastProvider>`'s.
 * @throws {ChangecastStateError} when there is neither.
 */
export function useFeed<Tables = RegisteredTables>(feed?: Feed<Tables>, primitive = 'useFeed'): Feed<Tables> {
  const found = feed ?? useContext(FeedContext)
  if (!found) {
    throw new ChangecastStateError(
      `${primitive}(): no Changecast feed. Wrap your app in <ChangecastProvider feed={feed}>, or pass { feed } to it.`,
    )
  }
  // The provider holds one feed of any tables; `Register` (or the caller's type) says which.
  return found as unknown as Feed<Tables>
}

const read = <T>(value: MaybeAccessor<T>): T => (typeof value === 'function' ? (value as Accessor<T>)() : value)
const identity = parametersKey

/**
 * A signal following the store `make()` returns. `make` runs tracked: when an accessor it
 * reads changes (and the parameters differ by value), the old store is left and a new one
 * followed. Subscriptions end with the owner (component, `createRoot`).
 */
function follow<T>(initial: T, parameters: () => unknown, make: () => ExternalStore<T>): Accessor<T> {
  const [value, setValue] = createSignal<T>(initial)
  let current: string | undefined
  createRenderEffect(() => {
    const id = identity(parameters())
    if (id === current) return
    current = id
    const store = untrack(make)
    const update = () => setValue(() => store.getSnapshot())
    const off = store.subscribe(update)
    update()
    onCleanup(() => {
      current = undefined
      off()
    })
  })
  return value
}

/**
 * An accessor of one entity's current value (`undefined` while loading and when it does not
 * exist; {@link createEntityState} tells the two apart), read once from Dexie and kept
 * current from change events of that key only. `table` and `key` may be accessors.
 *
 * @example
 * const todo = createEntity('todos', () => props.id)
 * return <span>{todo()?.title}</span>
 */
export function createEntity<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  table: MaybeAccessor<N>,
  key: MaybeAccessor<KeyOf<Tables, N>>,
  options: FeedOption<Tables> = {},
): Accessor<ValueOf<Tables, N> | undefined> {
  const feed = useFeed(options.feed, 'createEntity')
  return follow<ValueOf<Tables, N> | undefined>(
    undefined,
    () => [read(table), read(key)],
    () => entityStore(feed, read(table), read(key)),
  )
}

/**
 * An accessor of one entity's state, for when "still loading" and "does not exist" must look
 * different: `{ status: 'loading' }`, `{ status: 'found', value }`, `{ status: 'missing' }` or
 * `{ status: 'error', error }`.
 *
 * @example
 * const todo = createEntityState('todos', () => props.id)
 * return <Show when={todo().status === 'found'} fallback={<p>…</p>}>{todo().value!.title}</Show>
 */
export function createEntityState<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  table: MaybeAccessor<N>,
  key: MaybeAccessor<KeyOf<Tables, N>>,
  options: FeedOption<Tables> = {},
): Accessor<EntityState<ValueOf<Tables, N>>> {
  const feed = useFeed(options.feed, 'createEntityState')
  return follow<EntityState<ValueOf<Tables, N>>>(
    { status: 'loading', value: undefined },
    () => [read(table), read(key)],
    () => entityStateStore(feed, read(table), read(key)),
  )
}

/**
 * An accessor of a live array of a table's rows (optionally filtered, sorted, limited), kept
 * current from change events without re-querying. Rows that did not change keep their
 * identity, so `<For>` keeps their DOM. `table` and `query` may be accessors.
 *
 * @example
 * const open = createTable('todos', { where: { done: false }, orderBy: 'title' })
 * return <For each={open()}>{(todo) => <li>{todo.title}</li>}</For>
 */
export function createTable<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  table: MaybeAccessor<N>,
  query: MaybeAccessor<TableQuery<ValueOf<Tables, N>>> = {},
  options: FeedOption<Tables> = {},
): Accessor<readonly ValueOf<Tables, N>[]> {
  const feed = useFeed(options.feed, 'createTable')
  return follow<readonly ValueOf<Tables, N>[]>(
    [],
    () => [read(table), read(query)],
    () => tableStore(feed, read(table), { ...read(query) }),
  )
}

/**
 * An accessor of the most recent events matching a topic or filter, newest first.
 *
 * @example
 * const recent = createChanges({ table: 'todos' }, { limit: 20 })
 */
export function createChanges<Tables = RegisteredTables>(
  filter: MaybeAccessor<'*'>,
  options?: FeedOption<Tables> & { limit?: number },
): Accessor<readonly EventOf<Tables>[]>
export function createChanges<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  filter: MaybeAccessor<Topic<Tables, N> | ChangeFilter<Tables, N>>,
  options?: FeedOption<Tables> & { limit?: number },
): Accessor<readonly EventOf<Tables, N>[]>
export function createChanges<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  filter: MaybeAccessor<Topic<Tables, N> | ChangeFilter<Tables, N>>,
  options: FeedOption<Tables> & { limit?: number } = {},
): Accessor<readonly EventOf<Tables, N>[]> {
  const feed = useFeed(options.feed, 'createChanges')
  return follow(
    [] as readonly EventOf<Tables, N>[],
    () => read(filter),
    () => changesStore(feed, read(filter), { limit: options.limit }),
  )
}

/**
 * Runs `handler` for every event matching a topic or filter until the owner is disposed;
 * a `filter` accessor resubscribes when it changes.
 *
 * @example
 * createChangeEvent({ table: 'todos', source: 'tab' }, (e) => toast(`Changed in another tab: ${e.key}`))
 */
export function createChangeEvent<Tables = RegisteredTables>(
  filter: MaybeAccessor<'*'>,
  handler: (event: EventOf<Tables>) => void,
  options?: FeedOption<Tables>,
): void
export function createChangeEvent<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  filter: MaybeAccessor<Topic<Tables, N> | ChangeFilter<Tables, N>>,
  handler: (event: EventOf<Tables, N>) => void,
  options?: FeedOption<Tables>,
): void
export function createChangeEvent<Tables = RegisteredTables, N extends TableName<Tables> = TableName<Tables>>(
  filter: MaybeAccessor<Topic<Tables, N> | ChangeFilter<Tables, N>>,
  handler: (event: EventOf<Tables, N>) => void,
  options: FeedOption<Tables> = {},
): void {
  const feed = useFeed(options.feed, 'createChangeEvent')
  let current: string | undefined
  createRenderEffect(() => {
    const value = read(filter)
    const id = identity(value)
    if (id === current) return
    current = id
    const off = untrack(() => feed.on(value, (event) => handler(event)))
    onCleanup(() => {
      current = undefined
      off()
    })
  })
}

/**
 * An accessor of the server sync status (`state`, `outbox`, `serverRev`…; see the core
 * README). In a tab that does not lead the sync, it mirrors the leader's.
 * @throws {ChangecastStateError} when the feed has no `sync` option.
 *
 * @example
 * const status = createSyncStatus()
 * return <span>{status().state} · {status().outbox} waiting</span>
 */
export function createSyncStatus<Tables = RegisteredTables>(options: FeedOption<Tables> = {}): Accessor<SyncStatus> {
  const sync = syncOf(useFeed(options.feed, 'createSyncStatus'), 'createSyncStatus')
  return follow<SyncStatus>(
    sync.status,
    () => 0,
    () => syncStatusStore(sync),
  )
}

/**
 * An accessor of the server's rejections of this client's commits not dismissed yet,
 * oldest first. Dismiss one with `feed.sync.dismiss(rev)`.
 * @throws {ChangecastStateError} when the feed has no `sync` option.
 */
export function createRejections<Tables = RegisteredTables>(
  options: FeedOption<Tables> = {},
): Accessor<readonly SyncRejection[]> {
  const sync = syncOf(useFeed(options.feed, 'createRejections'), 'createRejections')
  return follow<readonly SyncRejection[]>(
    [],
    () => 0,
    () => rejectionsStore(sync),
  )
}
