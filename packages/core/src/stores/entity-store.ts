import type { IndexableType } from 'dexie'
import type { Feed } from '../changecast.js'
import type { AnyTables, KeyOf, TableName, ValueOf } from '../types.js'
import { keyToString } from '../util/encode-key.js'
import { lazyStore, type ExternalStore } from './external-store.js'

/**
 * The current value of one entity: read from Dexie when the first subscriber comes, then
 * kept current from change events of that key only (local, tab, remote). `undefined`
 * while loading and when the entity does not exist.
 *
 * @example
 * const store = entityStore(feed, 'todos', 42)
 * const off = store.subscribe(() => console.log(store.getSnapshot()))
 */
export function entityStore<Tables, N extends TableName<Tables>>(
  typedFeed: Feed<Tables>,
  table: N,
  typedKey: KeyOf<Tables, N>,
): ExternalStore<ValueOf<Tables, N> | undefined> {
  type T = ValueOf<Tables, N>
  const key = typedKey as IndexableType
  // One feed type inside: the table map only shapes the signature.
  const feed = typedFeed as unknown as Feed<AnyTables>
  let value: T | undefined
  // Counts applied changes, so a read that started before an event cannot overwrite it.
  let version = 0
  return lazyStore(
    () => value,
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
              if (found !== value) {
                value = found
                notify()
              }
            },
            (error: unknown) => console.error(`[changecast] Could not read ${table} ${keyToString(key)}:`, error),
          )
      }
      const off = feed.on({ table, key }, (event) => {
        version++
        value = (event.type === 'delete' ? undefined : event.value) as T | undefined
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
