import type { DBCoreGetManyRequest, DBCoreQueryRequest, DBCoreQueryResponse, DBCoreTable } from 'dexie'
import { cloneValue } from '../util/clone.js'
import { ascendingRange, readByRange } from './read-previous.js'

/**
 * Cheaper answers to the reads Dexie's own write operations make, in the readwrite
 * transactions Changecast captures. Each answer is what the read would have returned, read
 * with fewer IndexedDB requests; the capture's own requests (the changelog row) cost less
 * than these save, so `update()` and `modify()` are not slower with Changecast than without.
 */

/** What Dexie keeps in a transaction as `_cache` (its cache-existing-values middleware). */
interface DexieTransactionCache {
  _cache?: { keys: unknown[]; values: unknown[] } | null
}

const EQUAL = 1 // DBCoreRangeType.Equal

/**
 * `table.update(key, changes)` is Dexie's `modify()` of `where(':id').equals(key)`: it reads
 * the matching primary key, waits, reads the value (through its transaction cache), waits,
 * then writes. Here the first read reads the value itself, through that same cache, so the
 * second is answered without a request: one round trip before the write instead of two.
 * Only for inbound keys, whose stored values are objects (an outbound-key store may hold
 * `undefined`, which a read cannot tell from no row). Returns undefined for other queries.
 */
export function keyReadThroughCache(
  table: DBCoreTable,
  req: DBCoreQueryRequest,
): Promise<DBCoreQueryResponse> | undefined {
  const { index, range } = req.query
  const { primaryKey } = table.schema
  if (
    req.values ||
    !index.isPrimaryKey ||
    primaryKey.outbound ||
    (range.type as number) !== EQUAL ||
    (req.limit !== undefined && req.limit < 1) ||
    (req.trans as unknown as IDBTransaction).mode !== 'readwrite'
  ) {
    return undefined
  }
  return table.getMany({ trans: req.trans, keys: [range.lower], cache: 'immutable' }).then(([value]) => {
    if (value !== undefined) return { result: [primaryKey.extractKey!(value)] }
    // Dexie reads no value for a key that is not there, and an `add` leaves its cache as it
    // is: a cached "no row" would outlive the row a later `add` writes.
    ;(req.trans as DexieTransactionCache)._cache = null
    return { result: [] }
  })
}

/**
 * Many strictly ascending numeric keys close together (a chunk of `modify()`, a `bulkGet`
 * of consecutive ids) are read with one range read over them instead of one `get` each, the
 * result kept in Dexie's transaction cache as its own middleware would have. Returns
 * undefined where Dexie's cache may answer, or the keys are not such keys.
 */
export function getManyByRange(table: DBCoreTable, req: DBCoreGetManyRequest): Promise<unknown[]> | undefined {
  const trans = req.trans as unknown as DexieTransactionCache & IDBTransaction
  const { keys } = req
  if (table.schema.primaryKey.outbound || trans.mode !== 'readwrite' || (req.cache && trans._cache)) return undefined
  const range = ascendingRange(keys)
  if (!range) return undefined
  return readByRange(table, req.trans, keys, range, true).then((values) => {
    // As Dexie's cache-existing-values middleware: 'clone' hands out the values read and keeps copies.
    if (req.cache) trans._cache = { keys, values: req.cache === 'clone' ? values.map((v) => cloneValue(v)) : values }
    return values
  }) as Promise<unknown[]>
}
