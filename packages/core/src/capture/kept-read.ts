import { cmp } from '../util/dexie.js'
import { cloneValue } from '../util/clone.js'

/**
 * Changecast's own cache of a transaction's reads, keyed by table and keys. Dexie's
 * `update()`, `modify()`, `bulkUpdate()` and hooks read the values they are about to
 * replace, then write; the write needs those same values as its previous values, so it takes
 * Changecast's copies of them instead of reading again. The last such read is kept until the
 * next write to any table of the transaction; a read answered after a write made since it
 * was made is not kept. Any other order falls back to reading.
 */
export interface ReadCache {
  /** Writes made in the transaction so far. */
  writes: number
  kept?: { table: string; keys: readonly unknown[]; values: unknown[] } | undefined
}

/** A read of `keys` in `table` is being made: returns the function that keeps copies of its answer. */
export function keepRead(cache: ReadCache, table: string, keys: readonly unknown[]): (values: unknown[]) => void {
  const writes = cache.writes
  return (values) => {
    if (cache.writes === writes) cache.kept = { table, keys, values: values.map(cloneValue) }
  }
}

/**
 * A write to `table` is being made: returns the values `keys` held before it, when the kept
 * read found them all (in the order read), and empties the cache.
 */
export function takeRead(cache: ReadCache, table: string, keys?: readonly unknown[]): unknown[] | undefined {
  const { kept } = cache
  cache.writes++
  cache.kept = undefined
  if (!keys || kept?.table !== table) return undefined
  const found: unknown[] = []
  for (let i = 0; found.length < keys.length && i < kept.keys.length; i++) {
    if (keys[found.length] != null && cmp(kept.keys[i], keys[found.length]) === 0) found.push(kept.values[i])
  }
  return found.length === keys.length ? found : undefined
}
