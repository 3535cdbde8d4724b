import { cmp } from 'dexie'
import { cloneValue } from '../util/clone.js'

interface Entry {
  /** Writes made to the table in this transaction so far. */
  writes: number
  keys?: readonly unknown[]
  values?: readonly unknown[]
  /** The values are copies of Changecast's own (else they are Dexie's, shared with its caller). */
  owned?: boolean
}

/**
 * Changecast's own cache of one transaction's reads, per table and key. Dexie's `update()`,
 * `modify()`, `bulkUpdate()` and its hooks read the values they are about to replace; the
 * write that follows needs those same values as its previous values, so it is given copies
 * of them instead of reading again. Every write to a table, whatever its kind, empties that
 * table's entry, and a read answered after a write it was made before is not kept.
 */
export class ReadCache {
  readonly #tables = new Map<string, Entry>()

  /**
   * A read of `keys` is being made: returns the function that keeps its answer, unless the
   * table was written meanwhile. `owned`: the answer goes to a caller that may change it
   * (Dexie's `cache: 'clone'` reads), so copies are kept.
   */
  reading(table: string, keys: readonly unknown[], owned: boolean): (values: readonly unknown[]) => void {
    const entry = this.#entry(table)
    const writes = entry.writes
    return (values) => {
      if (entry.writes !== writes) return
      entry.keys = keys
      entry.values = owned ? values.map((value) => cloneValue(value)) : values
      entry.owned = owned
    }
  }

  /**
   * A write to `table` is being made. Returns copies of the values `keys` held before it, when
   * a kept read found them all (in the order read), and empties the table's entry.
   */
  write(table: string, keys?: readonly unknown[]): unknown[] | undefined {
    const entry = this.#entry(table)
    entry.writes++
    const found = keys && entry.keys && pick(entry.keys, entry.values!, keys)
    entry.keys = entry.values = undefined
    if (!found || entry.owned) return found
    return found.map((value) => cloneValue(value))
  }

  #entry(table: string): Entry {
    let entry = this.#tables.get(table)
    if (!entry) this.#tables.set(table, (entry = { writes: 0 }))
    return entry
  }
}

/** The values of `wanted`, each found in `keys` after the previous one; `undefined` unless all are. */
function pick(keys: readonly unknown[], values: readonly unknown[], wanted: readonly unknown[]): unknown[] | undefined {
  if (wanted.length > keys.length) return undefined
  const found: unknown[] = []
  for (let i = 0; found.length < wanted.length && i < keys.length; i++) {
    const key = wanted[found.length]
    if (key === undefined || key === null) return undefined
    if (cmp(keys[i], key) === 0) found.push(values[i])
  }
  return found.length === wanted.length ? found : undefined
}
