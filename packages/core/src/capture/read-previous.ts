import { Dexie } from '../util/dexie.js'
import type { DBCoreDeleteRangeRequest, DBCoreTable, DBCoreTransaction } from 'dexie'

type Thenable<T> = PromiseLike<T>

/** Stands for an existing row whose value was not read (previous capture is off). */
export const PRESENT = true

/** From this many keys on, one read over [min, max] is tried before a get per key. */
const RANGE_READ_FROM = 32

/**
 * Values before a write, per key (`undefined` where there was none; {@link PRESENT} for an
 * existing row when `withValues` is false), with one `getMany` issued now, so a write issued
 * right after still finds them as they were.
 */
export function readPrevious(
  table: DBCoreTable,
  trans: DBCoreTransaction,
  keys: readonly unknown[],
  withValues: boolean,
): Thenable<unknown[]> {
  const present = keys.filter((key) => key != null)
  const read = present.length ? table.getMany({ trans, keys: present }) : Dexie.Promise.resolve([])
  return read.then((found: unknown[]) => {
    let next = 0
    return keys.map((key) => {
      const value = key == null ? undefined : found[next++]
      return value === undefined || withValues ? value : PRESENT
    })
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
 * exactly these keys). Where the range holds more rows (other keys between the ones asked
 * for), the keys are read one by one instead: the cost stays bounded by the number of keys,
 * not by what the table holds.
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
  const present = (value: unknown): unknown => (value === undefined || withValues ? value : PRESENT)
  return table.query({ trans, values: withValues, query, limit }).then(({ result }) => {
    if (result.length === limit) {
      return table
        .getMany({ trans, keys: [...keys] })
        .then((values: unknown[]) => ({ values: values.map(present), only: false }))
    }
    // Numbers as map keys: SameValueZero, like IndexedDB, counts 0 and -0 as one key.
    // A keys-only read yields the keys themselves.
    const found = new Map<unknown, unknown>()
    for (const item of result as unknown[]) found.set(withValues ? primaryKey.extractKey!(item) : item, item)
    const values = keys.map((key) => present(found.get(key)))
    return { values, only: values.filter((value) => value !== undefined).length === found.size }
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
  const { primaryKey } = table.schema
  const read = (values: boolean) =>
    table
      .query({ trans: req.trans, query: { index: primaryKey, range: req.range }, values })
      .then(({ result }) => result as unknown[])
  const values = withValues ? read(true) : undefined
  const keys =
    values && !primaryKey.outbound
      ? values.then((rows) => rows.map((row): unknown => primaryKey.extractKey!(row)))
      : read(false)
  return keys.then((found) =>
    (values ?? keys).then((rows) => ({ keys: found, values: values ? rows : found.map(() => PRESENT) })),
  )
}
