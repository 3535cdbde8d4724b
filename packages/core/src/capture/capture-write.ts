import type { DBCoreMutateRequest, DBCoreMutateResponse, DBCorePutRequest, DBCoreTable, DBCoreTransaction } from 'dexie'
import type { FieldOp } from '../sync/merge.js'
import type { ChangeEvent } from '../types.js'
import { ascendingRange, closedRange, denseRange, readPrevious, readRange, readSpan } from './read-previous.js'
import { takeRead } from './kept-read.js'
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
 *   kept by {@link keepRead}: no request;
 * - else, for many close numeric keys written `alone` (the only request of a transaction
 *   Dexie opened for it: `bulkPut`, `bulkDelete`), one read over their range, bounded by
 *   their number, that the write waits for (nothing else can run in that transaction);
 * - else one read (`get`, `getMany`) issued *just before* the write, in the same tick:
 *   IndexedDB runs a transaction's requests in order, so it sees the values from before the
 *   write, and the write does not wait for it (in an application's transaction, a request
 *   it makes right after must still run after the write).
 * The values stored are Changecast's copies, so what IndexedDB keeps is exactly what the
 * events report.
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
    const before: Before = { value: takeRead(stage, schema.name, keys) }
    const read = (values: unknown[]): void => {
      before.value = values
      onRead?.(() => assumed(values))
    }
    if (before.value) {
      read(before.value)
      return { before, response: write(before) }
    }
    if (span && alone) {
      const response = readSpan(table, trans, keys, span, withValues).then(
        ({ values, only }) => {
          read(values)
          before.only = only
          return write(before)
        },
        (error: unknown) => {
          abort(trans)
          throw error
        },
      ) as Promise<DBCoreMutateResponse>
      return { before, response }
    }
    // A read that fails aborts the transaction: the write must not commit without its events.
    readPrevious(table, trans, keys, withValues).then(read, () => abort(trans))
    return { before, response: write(before) }
  }

  switch (req.type) {
    case 'add': {
      takeRead(stage, schema.name)
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
      const ops = opsOf(req)
      const { before, response } = replacing(
        keys,
        true,
        (previous) => (known ? record({ op: 'put', keys, values: snapshot(stored), previous, ops }) : undefined),
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
            ops,
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
      takeRead(stage, schema.name)
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
 * A field update (`update()`, `modify()`, `bulkUpdate()`, `upsert()`, not `put()`): the Dexie
 * modifications (`add()`…) it applies, by key path (`{}` for none); undefined for a whole value.
 */
function opsOf(req: DBCorePutRequest): Record<string, FieldOp> | undefined {
  if (req.changeSpec === undefined && !req.updates) return
  const ops: Record<string, FieldOp> = {}
  const spec = req.changeSpec || (req.upsert && req.updates!.changeSpecs[0])
  for (const path in spec as object) {
    const op = (spec as Record<string, { '@@propmod'?: FieldOp } | null>)[path]?.['@@propmod']
    if (op) ops[path] = op
  }
  return ops
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
