import type { DBCoreMutateRequest, DBCoreMutateResponse, DBCoreTable, DBCoreTransaction } from 'dexie'
import type { ChangeEvent } from '../types.js'
import { holdRequests } from './held-requests.js'
import { ascendingRange, closedRange, denseRange, readPrevious, readRange, readSpan } from './read-previous.js'
import { effectiveKeys, resultKeys, snapshot, withKeys } from './request-keys.js'
import type { Stage } from './stage.js'
import { toChangeEvents, type WriteRecord } from './to-change-events.js'

/** From this many keys on, a delete of close ascending keys may become a range delete. */
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

/** What keys held before a write; `only`: a range read found no other key between them. */
interface Before {
  value: unknown[] | undefined
  only?: boolean
}

/**
 * Starts one write, and finds what it replaces:
 * - the values Dexie's own operation just read (`update`, `modify`, `bulkUpdate`, hooks),
 *   kept in the transaction's {@link ReadCache}: no request;
 * - else, for many close numeric keys, one read over their range, bounded by their number:
 *   the write waits for it, and requests the transaction makes meanwhile wait behind the
 *   write, so IndexedDB still runs them in the order they were made;
 * - else one read (`get`, `getMany`) issued *just before* the write, in the same tick:
 *   IndexedDB runs a transaction's requests in order, so it sees the values from before the
 *   write, and the write does not wait for it.
 * The values stored are Changecast's copies, so what IndexedDB keeps is exactly what the
 * events report.
 */
export function captureWrite(
  table: DBCoreTable,
  req: DBCoreMutateRequest,
  stage: Stage,
  keepPrevious: boolean,
  onRead?: OnRead,
): CapturedWrite {
  const { schema } = table
  const { trans } = req
  const stamp = { tx: stage.tx, origin: stage.origin, source: stage.source, at: 0, removed: stage.removed }
  const record = (write: Omit<WriteRecord, 'table' | 'keepPrevious'>): ChangeEvent[] =>
    toChangeEvents({ ...write, table: schema.name, keepPrevious }, stamp)

  /** Finds what `keys` hold before `write`, and makes the write. */
  const replacing = (
    keys: readonly unknown[],
    withValues: boolean,
    assumed: (before: unknown[]) => ChangeEvent[] | undefined,
    write: (before: Before) => Promise<DBCoreMutateResponse>,
    span?: [number, number],
  ): { before: Before; response: Promise<DBCoreMutateResponse> } => {
    const before: Before = { value: stage.cache.write(schema.name, keys) }
    const read = (values: unknown[]): void => {
      before.value = values
      onRead?.(() => assumed(values))
    }
    if (before.value) {
      read(before.value)
      return { before, response: write(before) }
    }
    if (span) {
      const release = holdRequests(stage)
      const response = readSpan(table, trans, keys, span, withValues).then(
        ({ values, only }) => {
          read(values)
          before.only = only
          try {
            return write(before)
          } finally {
            release()
          }
        },
        (error: unknown) => {
          abort(trans)
          release()
          throw error
        },
      ) as Promise<DBCoreMutateResponse>
      return { before, response }
    }
    readBefore(table, trans, keys, withValues, read)
    return { before, response: write(before) }
  }

  switch (req.type) {
    case 'add': {
      stage.cache.write(schema.name)
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
      const { before, response } = replacing(
        keys,
        true,
        (previous) => (known ? record({ op: 'put', keys, values: snapshot(stored), previous }) : undefined),
        () => table.mutate({ ...req, values: stored }),
        schema.primaryKey.outbound ? undefined : denseRange(keys),
      )
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
      // Without previous capture a delete only needs to know which keys exist.
      const span = !keepPrevious || !schema.primaryKey.outbound ? denseRange(req.keys) : undefined
      // Many close ascending keys: when the read of [min, max] finds no other key there, one
      // range delete does the work of a delete per key (`bulkDelete` of consecutive ids).
      const ranged = span && req.keys.length >= RANGE_DELETE_FROM && ascendingRange(req.keys)
      const { before, response } = replacing(
        req.keys,
        keepPrevious,
        (previous) => record({ op: 'delete', keys: req.keys, previous }),
        ({ only }) => table.mutate(ranged && only ? { type: 'deleteRange', trans, range: closedRange(ranged) } : req),
        span,
      )
      return {
        response,
        events: (res) => record({ op: 'delete', keys: req.keys, previous: before.value, failures: res.failures }),
      }
    }
    case 'deleteRange': {
      stage.cache.write(schema.name)
      const removed: { value?: { keys: unknown[]; values: unknown[] } } = {}
      readRange(table, req, keepPrevious).then(
        (value) => (removed.value = value),
        () => abort(trans),
      )
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
 * Reads what `keys` hold, just before the write. One key is read with a native `get` (or
 * `getKey`), the cheapest request there is; several with one `getMany`. A read that fails
 * aborts the transaction: the write issued after it must not commit without its events.
 */
function readBefore(
  table: DBCoreTable,
  trans: DBCoreTransaction,
  keys: readonly unknown[],
  withValues: boolean,
  done: (values: unknown[]) => void,
): void {
  const key = keys[0]
  if (keys.length !== 1 || key === undefined || key === null) {
    readPrevious(table, trans, keys).then(
      (values) => done(withValues ? values : values.map((value) => (value === undefined ? undefined : true))),
      () => abort(trans),
    )
    return
  }
  const store = (trans as unknown as IDBTransaction).objectStore(table.schema.name)
  const request = withValues ? store.get(key as IDBValidKey) : store.getKey(key as IDBValidKey)
  // Its error is not handled: it fails the transaction.
  request.onsuccess = () => {
    const found: unknown = request.result
    done([withValues || found === undefined ? found : true])
  }
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
