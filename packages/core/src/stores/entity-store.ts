import type { IndexableType } from 'dexie'
import type { Feed } from '../changecast.js'
import type { AnyTables, KeyOf, TableName, ValueOf } from '../types.js'
import { keyToString } from '../util/encode-key.js'
import { lazyStore, type ExternalStore } from './external-store.js'

/**
 * Where one entity stands: still being read (`loading`), stored (`found`, with its value),
 * not stored (`missing`), or unreadable (`error`, e.g. the database failed to open).
 */
export type EntityState<T> =
  | { readonly status: 'loading'; readonly value: undefined }
  | { readonly status: 'found'; readonly value: T }
  | { readonly status: 'missing'; readonly value: undefined }
  | { readonly status: 'error'; readonly value: undefined; readonly error: unknown }

const LOADING = Object.freeze({ status: 'loading', value: undefined } as const)
const MISSING = Object.freeze({ status: 'missing', value: undefined } as const)

/**
 * The state of one entity ({@link EntityState}): read from Dexie when the first subscriber
 * comes, then kept current from change events of that key only (local, tab, remote). The
 * snapshot is a new object only when the state or the value changes.
 *
 * @example
 * const store = entityStateStore(feed, 'todos', 42)
 * store.subscribe(() => {
 *   const todo = store.getSnapshot()
 *   if (todo.status === 'missing') console.log('no todo 42')
 * })
 */
export function entityStateStore<Tables, N extends TableName<Tables>>(
  typedFeed: Feed<Tables>,
  table: N,
  typedKey: KeyOf<Tables, N>,
): ExternalStore<EntityState<ValueOf<Tables, N>>> {
  type T = ValueOf<Tables, N>
  const key = typedKey as IndexableType
  // One feed type inside: the table map only shapes the signature.
  const feed = typedFeed as unknown as Feed<AnyTables>
  let state: EntityState<T> = LOADING
  const settle = (value: T | undefined): EntityState<T> =>
    value === undefined ? MISSING : state.value === value ? state : { status: 'found', value }
  // Counts applied changes, so a read that started before an event cannot overwrite it.
  let version = 0
  return lazyStore(
    () => state,
    (notify) => {
      let active = true
      const load = (): void => {
        const started = version
        feed.db
          .table(table)
          .get(key)
          .then(
            (found: T | undefined) => {
              if (!active || version !== started) return
              version++
              const next = settle(found)
              if (next !== state) {
                state = next
                notify()
              }
            },
            (error: unknown) => {
              if (!active || version !== started) return
              console.error(`[changecast] Could not read ${table} ${keyToString(key)}:`, error)
              state = { status: 'error', value: undefined, error }
              notify()
            },
          )
      }
      const off = feed.on({ table, key }, (event) => {
        version++
        state = settle(event.type === 'delete' ? undefined : (event.value as T))
        notify()
      })
      const offResync = feed.onResync(load)
      load()
      return () => {
        active = false
        off()
        offResync()
      }
    },
  )
}

/**
 * The current value of one entity: read from Dexie when the first subscriber comes, then
 * kept current from change events of that key only (local, tab, remote). `undefined`
 * while loading and when the entity does not exist; {@link entityStateStore} tells the two
 * apart.
 *
 * @example
 * const store = entityStore(feed, 'todos', 42)
 * const off = store.subscribe(() => console.log(store.getSnapshot()))
 */
export function entityStore<Tables, N extends TableName<Tables>>(
  feed: Feed<Tables>,
  table: N,
  key: KeyOf<Tables, N>,
): ExternalStore<ValueOf<Tables, N> | undefined> {
  const states = entityStateStore(feed, table, key)
  return { subscribe: states.subscribe, getSnapshot: () => states.getSnapshot().value }
}
