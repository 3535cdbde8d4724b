import type { IndexableType } from 'dexie'
import type { Feed } from '../changecast.js'
import type { AnyTables } from '../types.js'
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
export function entityStore<T = unknown>(
  feed: Feed<AnyTables>,
  table: string,
  key: IndexableType,
): ExternalStore<T | undefined> {
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
