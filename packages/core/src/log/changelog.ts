import Dexie from 'dexie'
import { ChangecastStateError } from '../errors.js'
import type { ChangeBatch, ChangeEvent, ChangeSource } from '../types.js'

/** Name of Changecast's own object store: one row per committed transaction. */
export const LOG_TABLE = '_changecast_log'

/**
 * One change as stored in the changelog (an event without its batch stamp). An update
 * stores the new value, its `changes` and `undo` (the old values of the changed paths)
 * instead of the whole previous object: the previous value is rebuilt when read.
 */
export type LoggedChange = Pick<ChangeEvent, 'type' | 'table' | 'key' | 'value' | 'previous' | 'changes'> & {
  undo?: Record<string, unknown>
}

/** A changelog row. `rev` is the auto-increment key: a total commit order across contexts. */
export interface LogRow {
  rev: number
  tx: string
  origin: string
  /** Where the writer saw the change come from: its own code (`local`) or the server (`remote`). */
  source: Exclude<ChangeSource, 'tab'>
  at: number
  changes: LoggedChange[]
}

/** How long changelog rows are kept. */
export interface LogRetention {
  /** Keep at most this many rows. @default 10000 */
  maxEntries?: number
  /** Keep rows at most this old, in ms. @default 604800000 (7 days) */
  maxAge?: number
}

export const DEFAULT_RETENTION: Required<LogRetention> = { maxEntries: 10_000, maxAge: 7 * 24 * 60 * 60 * 1000 }

/**
 * Adds the changelog store to the database's newest declared version, so the user's
 * schema needs no edit. Must run before the database opens.
 */
export function declareLogTable(db: Dexie, extra: Record<string, string> = {}): void {
  if (!db.verno) {
    throw new ChangecastStateError(
      `changecast(db): declare the schema (db.version(n).stores({...})) before calling changecast(db), ` +
        `so the changelog store '${LOG_TABLE}' can be added to it; or pass { log: false }.`,
    )
  }
  db.version(db.verno).stores({ [LOG_TABLE]: '++rev', ...extra })
}

/** The row stored for a committed batch. */
export function toLoggedChange(event: ChangeEvent): LoggedChange {
  const change: LoggedChange = { type: event.type, table: event.table, key: event.key }
  if (event.value !== undefined) change.value = event.value
  if (event.changes !== undefined) change.changes = event.changes
  if (event.previous === undefined) return change
  const undo = event.changes && !('' in event.changes) ? undoOf(event.previous, event.changes) : undefined
  if (undo) change.undo = undo
  else change.previous = event.previous
  return change
}

function undoOf(previous: unknown, changes: Record<string, unknown>): Record<string, unknown> {
  const undo: Record<string, unknown> = {}
  for (const path of Object.keys(changes)) undo[path] = Dexie.getByKeyPath(previous as object, path)
  return undo
}

/** The previous value of a logged update: its new value with the changed paths put back. */
function rebuildPrevious(value: unknown, undo: Record<string, unknown>): unknown {
  const previous = structuredClone(value) as object
  for (const [path, old] of Object.entries(undo)) {
    if (old === undefined) Dexie.delByKeyPath(previous, path)
    else Dexie.setByKeyPath(previous, path, old)
  }
  return previous
}

/** A changelog row as a batch, seen from context `self`. */
export function rowToBatch(row: LogRow, self: string): ChangeBatch {
  const source: ChangeSource = row.source === 'remote' ? 'remote' : row.origin === self ? 'local' : 'tab'
  // A damaged row (written by something else than Changecast) yields no events rather than an error.
  const changes = Array.isArray(row.changes) ? row.changes : []
  const events = changes.map(({ undo, ...change }): ChangeEvent => {
    const event: ChangeEvent = { ...change, source, origin: row.origin, tx: row.tx, rev: row.rev, at: row.at }
    if (undo) event.previous = rebuildPrevious(change.value, undo)
    return event
  })
  return { tx: row.tx, origin: row.origin, source, rev: row.rev, at: row.at, events }
}

/** Rows with `after < rev < before` (or every row after `after`), in rev order. */
export function readLog(db: Dexie, after: number, before?: number): Promise<LogRow[]> {
  const table = db.table<LogRow, number>(LOG_TABLE)
  const range =
    before === undefined ? table.where(':id').above(after) : table.where(':id').between(after, before, false, false)
  return range.toArray()
}

/** The newest rev in the changelog, or 0 when it is empty. */
export async function newestRev(db: Dexie): Promise<number> {
  const key = await db.table<LogRow, number>(LOG_TABLE).toCollection().lastKey()
  return typeof key === 'number' ? key : 0
}

/**
 * Deletes rows beyond the retention limits, but never a row at or after `keepFrom`
 * (the oldest rev something still needs, e.g. the sync outbox). Runs in its own
 * transaction over the changelog only, so it produces no events.
 */
export async function compactLog(db: Dexie, retention: Required<LogRetention>, keepFrom = Infinity): Promise<number> {
  const table = db.table<LogRow, number>(LOG_TABLE)
  return db.transaction('rw', table, async () => {
    const newest = await newestRev(db)
    const byCount = newest - retention.maxEntries
    const cutoff = Date.now() - retention.maxAge
    // Rows are in commit order, so the old ones form a prefix; this walks only that prefix.
    let byAge = 0
    await table
      .toCollection()
      .until((row) => row.at >= cutoff)
      .each((row) => {
        byAge = row.rev
      })
    // The newest row always stays: it tells a context that opens later where the log stands.
    const upTo = Math.min(Math.max(byCount, byAge), keepFrom - 1, newest - 1)
    if (upTo <= 0) return 0
    return table.where(':id').belowOrEqual(upTo).delete()
  })
}
