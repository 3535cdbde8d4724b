import { Dexie } from '../util/dexie.js'
import { cloneValue } from '../util/clone.js'
import type { DBCoreMutateResponse, DBCoreTableSchema } from 'dexie'

/** The primary key of each value of a put request: given, or read from the value (undefined for new auto-increment keys). */
export function effectiveKeys(
  schema: DBCoreTableSchema,
  keys: readonly unknown[] | undefined,
  values: readonly unknown[],
): unknown[] {
  if (keys) return [...keys]
  const extract = schema.primaryKey.extractKey
  return values.map((value): unknown => (extract ? extract(value) : undefined))
}

/** The final key of each item of an add or put: IndexedDB's results, else the keys given. */
export function resultKeys(
  res: DBCoreMutateResponse,
  req: { keys?: readonly unknown[] | null; values: readonly unknown[] },
): unknown[] {
  return res.results ?? (req.keys ? [...req.keys] : [])
}

/**
 * Copies of the values being written: the copy is what is stored *and* what events and
 * the changelog report, so a getter that answers differently each time, or a caller that
 * changes its object after the call returns, cannot make them differ.
 */
export function snapshot(values: readonly unknown[]): unknown[] {
  // A value that cannot be cloned cannot be stored either: fail the whole request
  // before any item is written, with the browser's own DataCloneError.
  return values.map((value) => cloneValue(value))
}

/** Puts generated auto-increment keys into the copies of inbound-key values. */
export function withKeys(schema: DBCoreTableSchema, values: unknown[], res: DBCoreMutateResponse): unknown[] {
  const { keyPath, autoIncrement, outbound } = schema.primaryKey
  if (!autoIncrement || outbound || typeof keyPath !== 'string' || !res.results) return values
  const results = res.results
  values.forEach((value, i) => {
    if (
      value !== null &&
      typeof value === 'object' &&
      Dexie.getByKeyPath(value, keyPath) === undefined &&
      results[i] !== undefined
    ) {
      Dexie.setByKeyPath(value, keyPath, results[i])
    }
  })
  return values
}
