import Dexie, { cmp } from 'dexie'
import type { DBCoreDeleteRangeRequest, DBCoreTable, DBCoreTransaction } from 'dexie'

type Thenable<T> = PromiseLike<T>

/** Stands for an existing row whose value was not read (previous capture is off). */
export const PRESENT = true

/** From this many keys on, one read over [min, max] is tried before a get per key. */
const RANGE_READ_FROM = 32

/**
 * Values before a write, per key (`undefined` where there was none), with one `getMany`
 * issued now, so a write issued right after still finds them as they were.
 */
export function readPrevious(
  table: DBCoreTable,
  trans: DBCoreTransaction,
  keys: readonly unknown[],
): Thenable<unknown[]> {
  const present = keys.filter((key) => key !== undefined && key !== null)
  if (present.length === 0) return Dexie.Promise.resolve(keys.map(() => undefined))
  const request = table.getMany({ trans, keys: present })
  if (present.length === keys.length) return request as Thenable<unknown[]>
  return request.then((found: unknown[]) => {
    let next = 0
    return keys.map((key) => (key === undefined || key === null ? undefined : found[next++]))
  })
}

/**
 * The range [smallest, largest] of many numeric keys, when it cannot hold more than twice
 * as many integer keys as there are keys: one read over it is then much cheaper than one
 * get per key (a bulk write of consecutive ids, or of new rows, where the range is empty).
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

/** {@link denseRange} of keys that are numbers in strictly ascending order (no key twice). */
export function ascendingRange(keys: readonly unknown[]): [number, number] | undefined {
  for (let i = 1; i < keys.length; i++) {
    if (!((keys[i] as number) > (keys[i - 1] as number))) return undefined
  }
  return denseRange(keys)
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
 * Old values of `keys` (numbers within `span`), read over `span` with at most twice as many
 * rows as there are keys; `only`: the range holds no other key (deleting the range deletes
 * exactly these keys). Where more rows lie in the range (other keys between the ones asked
 * for), the keys after the last row read are read one by one: the cost stays bounded by the
 * number of keys, not by what the table holds.
 */
export function readSpan(
  table: DBCoreTable,
  trans: DBCoreTransaction,
  keys: readonly unknown[],
  span: [number, number],
  withValues: boolean,
): Thenable<{ values: unknown[]; only: boolean }> {
  const { primaryKey } = table.schema
  const limit = keys.length * 2
  const query = { index: primaryKey, range: closedRange(span) }
  return table.query({ trans, values: withValues, query, limit }).then(({ result }) => {
    // Numbers as map keys: SameValueZero, like IndexedDB, counts 0 and -0 as one key.
    const found = new Map<unknown, unknown>()
    // A keys-only read yields the keys themselves: mark them present.
    for (const item of result as unknown[]) found.set(withValues ? primaryKey.extractKey!(item) : item, item)
    let matched = 0
    const values = keys.map((key) => {
      const value = found.get(key)
      if (value === undefined) return undefined
      matched++
      return withValues ? value : PRESENT
    })
    if (result.length < limit) return { values, only: matched === found.size }
    const end: unknown = result[result.length - 1]
    const last: unknown = withValues ? primaryKey.extractKey!(end) : end
    const rest = keys.filter((key) => cmp(key, last) > 0)
    return table.getMany({ trans, keys: rest }).then((more: unknown[]) => {
      let next = 0
      for (let i = 0; i < keys.length; i++) {
        if (cmp(keys[i], last) > 0) {
          const value = more[next++]
          values[i] = value === undefined || withValues ? value : PRESENT
        }
      }
      return { values, only: false }
    })
  })
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
