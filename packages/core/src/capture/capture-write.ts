import type { DBCoreMutateRequest, DBCoreMutateResponse, DBCoreTable, DBCoreTransaction } from 'dexie'
import type { ChangeEvent } from '../types.js'
import { ascendingRange, closedRange, readPrevious, readRange, readSpan } from './read-previous.js'
import { effectiveKeys, resultKeys, snapshot, withKeys } from './request-keys.js'
import type { Stage } from './stage.js'
import { toChangeEvents, type WriteRecord } from './to-change-events.js'

/** From this many keys on, a delete of close ascending keys alone in its transaction may become a range delete. */
const RANGE_DELETE_FROM = 200

/** A write on its way to IndexedDB, and how its answer becomes events. */
export interface CapturedWrite {
  response: Promise<DBCoreMutateResponse>
  /** The write's events, once its response is in (its reads answered before it). */
  events(res: DBCoreMutateResponse): ChangeEvent[]
}

/**
 * Called once what the write replaces is known, with the events it will have if it
 * succeeds (undefined when they cannot be known before its answer: generated keys).
 */
export type OnRead = (assumed: () => ChangeEvent[] | undefined) => void

/**
 * Starts one write. What it replaces is read with a request issued *just before* the write,
 * in the same tick: IndexedDB runs a transaction's requests in order, so the read sees the
 * values from before the write without the write waiting for it. The values stored are
 * Changecast's copies, so what IndexedDB keeps is exactly what the events report.
 */
export function captureWrite(
  table: DBCoreTable,
  req: DBCoreMutateRequest,
  stage: Stage,
  keepPrevious: boolean,
  onRead?: OnRead,
  alone = false,
): CapturedWrite {
  const { schema } = table
  const stamp = { tx: stage.tx, origin: stage.origin, source: stage.source, at: 0, removed: stage.removed }
  const record = (write: Omit<WriteRecord, 'table' | 'keepPrevious'>): ChangeEvent[] =>
    toChangeEvents({ ...write, table: schema.name, keepPrevious }, stamp)

  switch (req.type) {
    case 'add': {
      const stored = snapshot(req.values)
      const response = table.mutate({ ...req, values: stored })
      return {
        response,
        events: (res) =>
          record({
            op: 'add',
            keys: resultKeys(res, req),
            values: reported(schema, stored, res),
            failures: res.failures,
          }),
      }
    }
    case 'put': {
      const stored = snapshot(req.values)
      const keys = effectiveKeys(schema, req.keys, stored)
      const known = keys.every((key) => key !== undefined && key !== null)
      const before = readBefore(
        table,
        req.trans,
        keys,
        true,
        onRead &&
          (() =>
            onRead(() =>
              known ? record({ op: 'put', keys, values: snapshot(stored), previous: before.value }) : undefined,
            )),
      )
      const response = table.mutate({ ...req, values: stored })
      return {
        response,
        events: (res) =>
          record({
            op: 'put',
            keys: resultKeys(res, req),
            values: reported(schema, stored, res),
            previous: before.value,
            failures: res.failures,
          }),
      }
    }
    case 'delete': {
      const span =
        alone && !schema.primaryKey.outbound && req.keys.length >= RANGE_DELETE_FROM && ascendingRange(req.keys)
      if (span) {
        // Many close keys, in ascending order, in a transaction of their own (`bulkDelete` of
        // consecutive ids): the read of [min, max] tells whether that range holds only these
        // keys, and then one range delete does the work of a delete per key. The delete waits
        // for the read; nothing else runs in the transaction meanwhile.
        const before: { value: unknown[] | undefined } = { value: undefined }
        const response = readSpan(table, req.trans, req.keys, span, keepPrevious).then(
          ({ values, only }) => {
            before.value = values
            onRead?.(() => record({ op: 'delete', keys: req.keys, previous: values }))
            return table.mutate(only ? { type: 'deleteRange', trans: req.trans, range: closedRange(span) } : req)
          },
          (error: unknown) => {
            abort(req.trans)
            throw error
          },
        ) as Promise<DBCoreMutateResponse>
        return {
          response,
          events: (res) => record({ op: 'delete', keys: req.keys, previous: before.value, failures: res.failures }),
        }
      }
      // Without previous capture a delete only needs to know which keys exist.
      const before = readBefore(
        table,
        req.trans,
        req.keys,
        keepPrevious,
        onRead && (() => onRead(() => record({ op: 'delete', keys: req.keys, previous: before.value }))),
      )
      const response = table.mutate(req)
      return {
        response,
        events: (res) => record({ op: 'delete', keys: req.keys, previous: before.value, failures: res.failures }),
      }
    }
    case 'deleteRange': {
      const removed = read(req.trans, readRange(table, req, keepPrevious))
      const response = table.mutate(req)
      return {
        response,
        events: (res) =>
          res.numFailures > 0 || !removed.value
            ? []
            : record({ op: 'delete', keys: removed.value.keys, previous: removed.value.values }),
      }
    }
  }
}

/**
 * What `keys` hold before the write. One key outside Dexie's cache is read with a native
 * `get` (or `getKey`), the cheapest request there is; everything else by {@link readPrevious}.
 */
function readBefore(
  table: DBCoreTable,
  trans: DBCoreTransaction,
  keys: readonly unknown[],
  withValues: boolean,
  after?: () => void,
): { value: unknown[] | undefined } {
  const key = keys[0]
  const native = trans as unknown as IDBTransaction
  if (keys.length !== 1 || key === undefined || key === null || (trans as { _cache?: unknown })._cache) {
    return read(trans, readPrevious(table, trans, keys, withValues), after)
  }
  const holder: { value: unknown[] | undefined } = { value: undefined }
  const store = native.objectStore(table.schema.name)
  const request = withValues ? store.get(key as IDBValidKey) : store.getKey(key as IDBValidKey)
  request.onsuccess = () => {
    const found: unknown = request.result
    holder.value = [withValues || found === undefined ? found : true]
    after?.()
  }
  // A failed read fails the transaction (its error is not handled): the write must not commit without events.
  return holder
}

/**
 * Keeps a read's result. A read that fails aborts the transaction: the write issued after
 * it must not commit without its events.
 */
function read<T>(trans: DBCoreTransaction, request: PromiseLike<T>, after?: () => void): { value: T | undefined } {
  const holder: { value: T | undefined } = { value: undefined }
  request.then(
    (value) => {
      holder.value = value
      after?.()
    },
    () => abort(trans),
  )
  return holder
}

function abort(trans: DBCoreTransaction): void {
  try {
    ;(trans as unknown as IDBTransaction).abort()
  } catch {
    // Already finished: the write failed too.
  }
}

/** The values events report: copies of what was stored (events are handed out; Dexie's caches keep `stored`). */
function reported(schema: DBCoreTable['schema'], stored: unknown[], res: DBCoreMutateResponse): unknown[] {
  return withKeys(schema, snapshot(stored), res)
}
