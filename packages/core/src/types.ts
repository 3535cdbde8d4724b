import type { Dexie, IndexableType, Table } from 'dexie'
import type { FieldOp } from './sync/merge.js'

export type { FieldOp }
import type { SyncAdapter } from './sync-port.js'

/** What a write did to one entity. */
export type ChangeType = 'create' | 'update' | 'delete'

/**
 * Where a change was made: in this context (`local`), in another tab or worker of the
 * same origin (`tab`), or on the server (`remote`).
 */
export type ChangeSource = 'local' | 'tab' | 'remote'

/** Fields every change event has, whatever its type. */
export interface ChangeEventBase<K = IndexableType> {
  /** Name of the Dexie table. */
  table: string
  /** Primary key, final: auto-increment keys are filled in from the write's results. */
  key: K
  /** Where the change was made. */
  source: ChangeSource
  /** Id of the context (tab, worker, server) that made the write. */
  origin: string
  /** Transaction id: all events of one commit share it. */
  tx: string
  /** Position in the durable changelog (total commit order), when the changelog is on. */
  rev?: number
  /** Commit time, in ms since the epoch. */
  at: number
}

/** An entity that did not exist before the write. */
export interface CreateEvent<T = unknown, K = IndexableType> extends ChangeEventBase<K> {
  type: 'create'
  /** The stored object after the write. */
  value: T
  previous?: undefined
  changes?: undefined
  ops?: undefined
  removed?: undefined
}

/** An entity whose stored object changed. */
export interface UpdateEvent<T = unknown, K = IndexableType> extends ChangeEventBase<K> {
  type: 'update'
  /** The stored object after the write. */
  value: T
  /** The object before the write, when previous capture is on for the table. */
  previous?: T
  /** Changed key paths (dotted for nested objects) → new value (`undefined` when removed). Never empty. */
  changes: Record<string, unknown>
  /**
   * Set when the write changed given fields — `update()`, `modify()`, `bulkUpdate()`,
   * `upsert()` — rather than storing a whole value (`put()`): the Dexie modifications it
   * applied, by key path (`update(key, { votes: add(1) })` → `{ votes: { add: 1 } }`; `{}` for
   * none). A sync server merges such an update into its own value and re-applies these
   * modifications, so concurrent edits of other fields and concurrent increments all count.
   */
  ops?: Record<string, FieldOp>
  removed?: undefined
}

/** An entity that existed and was deleted. */
export interface DeleteEvent<T = unknown, K = IndexableType> extends ChangeEventBase<K> {
  type: 'delete'
  value?: undefined
  /** The object before the write, when previous capture is on for the table. */
  previous?: T
  changes?: undefined
  ops?: undefined
  /**
   * True when the entity only left this client's view (sync scopes: it moved to a scope this
   * client does not read, or the client lost access to its scope); it still exists on the
   * server. Absent for a real delete.
   */
  removed?: true
}

/**
 * One entity-level change, emitted once the transaction that made it has committed. A union
 * on `type`: after `if (e.type === 'create')`, `e.value` is a `T`; after `'update'`,
 * `e.changes` is defined too.
 *
 * Treat events as immutable: the same object is handed to every subscriber. Its
 * `value` and `previous` are copies owned by Changecast, never objects that Dexie
 * (or your own code) still holds.
 *
 * @example
 * feed.on('todos', (e) => {
 *   if (e.type === 'update') console.log(e.key, Object.keys(e.changes))
 * })
 */
export type ChangeEvent<T = unknown, K = IndexableType> = CreateEvent<T, K> | UpdateEvent<T, K> | DeleteEvent<T, K>

/** All events of one committed transaction, in write order. */
export interface ChangeBatch<E extends ChangeEvent<unknown, unknown> = ChangeEvent> {
  tx: string
  origin: string
  source: ChangeSource
  rev?: number
  at: number
  events: E[]
}

/** Describes one table for typing: the stored object type and its primary key type. */
export interface TableShape<T = unknown, K = IndexableType> {
  value: T
  key: K
}

/** The table map used when a database has no typed tables: any name, unknown values. */
export type AnyTables = Record<string, TableShape>

/**
 * Table map of a typed Dexie subclass or `Dexie & { todos: EntityTable<Todo, 'id'> }`.
 * Tables that addons declare on every Dexie (module augmentation, e.g. dexie-observable's
 * `_changes`) are left out: only the tables your database type adds count.
 */
export type TablesOf<DB> = Omit<AllTablesOf<DB>, keyof AllTablesOf<Dexie>>

type AllTablesOf<DB> = {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- matching any Table<T, K, Insert>
  [N in keyof DB as DB[N] extends Table<any, any, any> ? N & string : never]: DB[N] extends Table<
    infer T,
    infer K,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    any
  >
    ? TableShape<T, K>
    : never
}

/** `TablesOf<DB>`, or `AnyTables` when the database declares no typed tables. */
export type TableMap<DB> = [keyof TablesOf<DB>] extends [never] ? AnyTables : TablesOf<DB>

/** Names of the tables in a table map. */
export type TableName<Tables> = keyof Tables & string

/** The event type of table `N` (a union when `N` is a union), with `table` narrowed to its name. */
export type EventOf<Tables, N extends TableName<Tables> = TableName<Tables>> = N extends unknown
  ? Tables[N] extends TableShape<infer T, infer K>
    ? ChangeEvent<T, K> & { table: N }
    : never
  : never

/** The batch type of a table map: its events are a union over the tables. */
export type BatchOf<Tables> = ChangeBatch<EventOf<Tables>>

/**
 * Which events a subscriber wants. Every field is optional and narrows the match;
 * arrays mean "any of".
 *
 * @example
 * feed.on({ table: 'todos', key: 42, type: ['update', 'delete'] }, (e) => render(e))
 */
export interface ChangeFilter<Tables = AnyTables, N extends TableName<Tables> = TableName<Tables>> {
  /** Table name or names. @default every captured table */
  table?: N | readonly N[]
  /** Primary key, compared with `indexedDB.cmp` (arrays for compound keys). @default any key */
  key?: Tables[N] extends TableShape<unknown, infer K> ? K : IndexableType
  /** Event type or types. @default every type */
  type?: ChangeType | readonly ChangeType[]
  /** Where the change was made. @default every source */
  source?: ChangeSource | readonly ChangeSource[]
}

/**
 * A Phoenix-style topic: `'*'` (everything), `'todos'` (one table) or `'todos:42'`
 * (one table and key; the key matches the string form of the event's key).
 */
export type Topic<Tables = AnyTables, N extends TableName<Tables> = TableName<Tables>> = '*' | N | `${N}:${string}`

/** Removes a subscription, listener or resource. Calling it twice is harmless. */
export type Unsubscribe = () => void

/** Options of {@link changecast}. */
export interface ChangecastOptions {
  /**
   * Tables to capture: a list of names, or a predicate over the name.
   * Dexie's `$`-prefixed tables and Changecast's own tables are never captured.
   * @default every table of the database
   */
  tables?: readonly string[] | ((name: string) => boolean)
  /**
   * Put the object before the write on `update` and `delete` events (`previous`).
   * `true` for every table, `false` for none, or a list of table names.
   * Changecast reads old values either way (to tell `create` from `update` and to
   * compute `changes`); turning this off keeps them out of events.
   * @default true
   */
  previous?: boolean | readonly string[]
  /**
   * The durable changelog: one row per committed transaction, written in the same
   * IndexedDB transaction as the data, in a store Changecast adds to your newest schema
   * version (`_changecast_log`). It gives every commit a `rev` (total order across tabs),
   * lets a tab that missed messages replay them, and backs `feed.since()`. `false` keeps
   * events in memory only. An object sets retention.
   * @default true ({ maxEntries: 10000, maxAge: 7 days })
   */
  log?: boolean | { maxEntries?: number; maxAge?: number }
  /**
   * Name of the BroadcastChannel that carries batches to the other tabs and workers of
   * this origin, or `false` to keep events in this context.
   * @default `changecast:${db.name}`
   */
  channel?: string | false
  /**
   * Server sync through an adapter: `sync: httpSync({ url })` from `@changecast/core/sync`
   * (protocol: docs/protocol.md). The changelog's local commits are pushed, the server's
   * batches applied with `source: 'remote'`; one context per database syncs at a time.
   * @default off
   */
  sync?: SyncAdapter
}

/**
 * Register your feed's type once, and the framework bindings' hooks and composables are
 * typed from your tables without passing the feed around:
 *
 * @example
 * declare module '@changecast/core' {
 *   interface Register {
 *     feed: typeof feed
 *   }
 * }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by module augmentation
export interface Register {}

/** The table map of the registered feed (see {@link Register}), or `AnyTables`. */
export type RegisteredTables = Register extends { feed: { on(topic: '*', handler: (event: infer E) => void): unknown } }
  ? TablesOfEvents<E>
  : AnyTables

type TablesOfEvents<E> = {
  [N in E extends { table: infer Name extends string } ? Name : never]: Extract<
    E,
    { table: N; type: 'create' }
  > extends { value: infer T; key: infer K }
    ? TableShape<T, K>
    : never
}

/** The stored object type of table `N`. */
export type ValueOf<Tables, N extends TableName<Tables>> = Tables[N] extends TableShape<infer T, unknown> ? T : unknown

/** The primary key type of table `N`. */
export type KeyOf<Tables, N extends TableName<Tables>> =
  Tables[N] extends TableShape<unknown, infer K> ? K : IndexableType
