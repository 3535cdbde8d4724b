import Dexie from 'dexie'
import type { DBCoreDeleteRangeRequest, DBCoreTable, DBCoreTransaction } from 'dexie'

type Thenable<T> = PromiseLike<T>

/** Stands for an existing row whose value was not read (previous capture is off). */
export const PRESENT = true

/** From this many keys on, one read over [min, max] is tried before a get per key. */
const RANGE_READ_FROM = 32

/**
 * Values before a write, per key (`undefined` where there was none). Dexie keeps the values
 * that `update`, `modify` and `bulkUpdate` just read in the transaction's `_cache`; asking
 * for copies of those costs no IndexedDB request. Otherwise they are read — issued now, so
 * a write issued right after still finds them as they were.
 */
export function readPrevious(
  table: DBCoreTable,
  trans: DBCoreTransaction,
  keys: readonly unknown[],
  withValues = true,
): Thenable<unknown[]> {
  const present = keys.filter((key) => key !== undefined && key !== null)
  if (present.length === 0) return Dexie.Promise.resolve(keys.map(() => undefined))
  const cached = (trans as { _cache?: { keys: unknown[] } | null })._cache
  const request =
    cached && cached.keys.length >= present.length
      ? table.getMany({ trans, keys: present, cache: 'clone' })
      : (!withValues || !table.schema.primaryKey.outbound) && denseRange(present)
        ? readByRange(table, trans, present, denseRange(present)!, withValues)
        : table.getMany({ trans, keys: present })
  if (present.length === keys.length) return request as Thenable<unknown[]>
  return request.then((found: unknown[]) => {
    let next = 0
    return keys.map((key) => (key === undefined || key === null ? undefined : found[next++]))
  })
}

/**
 * The range [smallest, largest] of many numeric keys, when it cannot hold more than twice
 * as many integer keys as there are keys: then one read over it is much cheaper than one
 * get per key (a bulk write of consecutive ids, or of new rows, where the range is empty).
 * The choice is made from the keys alone, before anything is read: the read must be
 * issued before the write, so there is no second chance after it.
 */
export function denseRange(keys: readonly unknown[]): [number, number] | undefined {
  if (keys.length < RANGE_READ_FROM) return undefined
  let lower = Infinity
  let upper = -Infinity
  for (const key of keys) {
    if (typeof key !== 'number') return undefined
    if (key < lower) lower = key
    if (key > upper) upper = key
  }
  return upper - lower < keys.length * 2 ? [lower, upper] : undefined
}

/** Old values of `keys`, from one read over `[lower, upper]`. */
export function readByRange(
  table: DBCoreTable,
  trans: DBCoreTransaction,
  keys: unknown[],
  span: [number, number],
  withValues: boolean,
): Thenable<unknown[]> {
  return readSpan(table, trans, keys, span, withValues).then(({ values }) => values)
}

/** A DBCore key range [lower, upper]. */
export const closedRange = ([lower, upper]: [number, number]) => ({
  type: 2 /* DBCoreRangeType.Range */,
  lower,
  upper,
  lowerOpen: false,
  upperOpen: false,
})

/**
 * Old values of `keys` from one read over `[lower, upper]`, and whether the range holds no
 * other key (`only`: deleting the range deletes exactly these keys).
 */
export function readSpan(
  table: DBCoreTable,
  trans: DBCoreTransaction,
  keys: unknown[],
  span: [number, number],
  withValues: boolean,
): Thenable<{ values: unknown[]; only: boolean }> {
  const { primaryKey } = table.schema
  const query = { index: primaryKey, range: closedRange(span) }
  return table.query({ trans, values: withValues, query }).then(({ result }) => {
    // Numbers as map keys: SameValueZero, like IndexedDB, counts 0 and -0 as one key.
    const found = new Map<unknown, unknown>()
    for (const item of result as unknown[]) {
      // A keys-only read yields the keys themselves: mark them present.
      if (withValues) found.set(primaryKey.extractKey!(item), item)
      else found.set(item, PRESENT)
    }
    let matched = 0
    const values = keys.map((key) => {
      const value = found.get(key)
      if (value !== undefined) matched++
      return value
    })
    return { values, only: matched === found.size }
  })
}

/** {@link denseRange} of keys that are numbers in strictly ascending order (no key twice). */
export function ascendingRange(keys: readonly unknown[]): [number, number] | undefined {
  for (let i = 1; i < keys.length; i++) {
    if (!((keys[i] as number) > (keys[i - 1] as number))) return undefined
  }
  return denseRange(keys)
}

/**
 * Keys and values in a range about to be deleted (`clear()`, `Collection.delete()`): one
 * `getAll` (keys read from the values) or, for outbound keys or without previous values,
 * a `getAllKeys` — issued now, before the delete.
 */
export function readRange(
  table: DBCoreTable,
  req: DBCoreDeleteRangeRequest,
  withValues: boolean,
): Thenable<{ keys: unknown[]; values: unknown[] }> {
  const { trans, range } = req
  const { primaryKey } = table.schema
  const query = { index: primaryKey, range }
  if (withValues && !primaryKey.outbound) {
    return table.query({ trans, query, values: true }).then(({ result }) => ({
      keys: result.map((value: unknown): unknown => primaryKey.extractKey!(value)),
      values: result,
    }))
  }
  const keys = table.query({ trans, query, values: false })
  if (!withValues) {
    return keys.then(({ result }) => ({ keys: result as unknown[], values: (result as unknown[]).map(() => PRESENT) }))
  }
  const values = table.query({ trans, query, values: true })
  return keys.then(({ result: found }) => values.then(({ result }) => ({ keys: found as unknown[], values: result })))
}
