import type Dexie from 'dexie'
import { ChangecastStateError } from '../errors.js'
import type { ChangeBatch, ChangeEvent, ChangeSource } from '../types.js'
import { cloneValue } from '../util/clone.js'
import { getOwnPath, setOwnPath } from '../util/own-path.js'
import { randomId } from '../util/random-id.js'

/** Name of Changecast's own object store: one row per committed transaction. */
export const LOG_TABLE = '_changecast_log'

/**
 * One change as stored in the changelog (an event without its batch stamp). An update
 * stores the new value, its `changes` and `undo` (the old values of the changed paths)
 * instead of the whole previous object: the previous value is rebuilt when read.
 */
export type LoggedChange = Pick<ChangeEvent, 'type' | 'table' | 'key' | 'value' | 'previous' | 'changes' | 'ops'> & {
  undo?: Record<string, unknown>
  removed?: true
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
  /**
   * Set on the row of a transaction whose changes are counted here but not kept (`changes`
   * is empty): a page of a server snapshot, whose values the tables already hold — keeping
   * them twice would double what a first sync writes, and the changelog's size. A context
   * that reads such a row from the changelog (instead of hearing its commit live) reloads
   * instead: `onResync` with reason `server-snapshot`; `since()` rejects across it.
   */
  unlogged?: number
}

/** How long changelog rows are kept. */
export interface LogRetention {
  /** Keep at most this many rows. @default 10000 */
  maxEntries?: number
  /** Keep rows at most this old, in ms. @default 604800000 (7 days) */
  maxAge?: number
}

export const DEFAULT_RETENTION: Required<LogRetention> = { maxEntries: 10_000, maxAge: 7 * 24 * 60 * 60 * 1000 }

const HOOKS = ['creating', 'reading', 'updating', 'deleting'] as const

/**
 * Adds the changelog store to the database's newest declared version, so the user's
 * schema needs no edit. Must run before the database opens.
 *
 * Dexie builds new Table objects whenever a schema is declared: the hooks and
 * `mapToClass()` the application set up on the old ones are set up again on the new ones
 * (in their order, through Dexie's public API), so that declaring the store changes nothing.
 */
export function declareLogTable(db: Dexie, extra: Record<string, string> = {}): void {
  if (!db.verno) {
    throw new ChangecastStateError(
      `changecast(db): declare the schema (db.version(n).stores({...})) first: the changelog store ` +
        `'${LOG_TABLE}' joins it. Or pass { log: false }.`,
    )
  }
  const before = db.tables
  db.version(db.verno).stores({ [LOG_TABLE]: '++rev', ...extra })
  for (const old of before) {
    const table = db.table(old.name)
    for (const name of HOOKS) {
      // mapToClass() reads rows through a hook of its own: map the new table the same way.
      for (const hook of old.hook[name].subscribers) {
        if (hook === old.schema.readHook) table.mapToClass(old.schema.mappedClass)
        else table.hook(name as 'creating', hook as never)
      }
    }
  }
}

/** The row stored for a committed batch. */
export function toLoggedChange(event: ChangeEvent): LoggedChange {
  const change: LoggedChange = { type: event.type, table: event.table, key: event.key }
  if (event.value !== undefined) change.value = event.value
  if (event.changes !== undefined) change.changes = event.changes
  if (event.ops) change.ops = event.ops
  if (event.removed) change.removed = true
  if (event.previous === undefined) return change
  const undo = event.changes && !('' in event.changes) ? undoOf(event.previous, event.changes) : undefined
  if (undo) change.undo = undo
  else change.previous = event.previous
  return change
}

function undoOf(previous: unknown, changes: Record<string, unknown>): Record<string, unknown> {
  const undo = Object.create(null) as Record<string, unknown>
  for (const path of Object.keys(changes)) undo[path] = getOwnPath(previous, path)
  return undo
}

/** The previous value of a logged update: its new value with the changed paths put back. */
function rebuildPrevious(value: unknown, undo: Record<string, unknown>): unknown {
  const previous = cloneValue(value) as Record<string, unknown>
  for (const [path, old] of Object.entries(undo)) setOwnPath(previous, path, old)
  return previous
}

/** A changelog row as a batch, seen from context `self`. */
export function rowToBatch(row: LogRow, self: string): ChangeBatch {
  const source: ChangeSource = row.source === 'remote' ? 'remote' : row.origin === self ? 'local' : 'tab'
  // A damaged row (written by something else than Changecast) yields no events rather than an error.
  const changes = Array.isArray(row.changes) ? row.changes.filter((change) => Object(change) === change) : []
  const events = changes.map(({ undo, ...change }): ChangeEvent => {
    // A logged change has the fields of its type (written from an event, checked on read).
    const event = { ...change, source, origin: row.origin, tx: row.tx, rev: row.rev, at: row.at } as ChangeEvent
    if (undo && event.type !== 'create') event.previous = rebuildPrevious(change.value, undo)
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
 * The changelog's identity row, at key 0 (below every rev): a random id written when the
 * log is first opened. A database deleted and created again gets a new log id, so a
 * context that knew the old one can tell that revs started over.
 */
interface LogIdentity {
  rev: 0
  log: string
}

/** Where the changelog stands when the database opens: its id (created if missing) and its newest rev. */
export async function openLog(db: Dexie): Promise<{ id: string; rev: number }> {
  const table = db.table<LogIdentity | LogRow, number>(LOG_TABLE)
  return db.transaction('rw', table, async () => {
    let identity = (await table.get(0)) as LogIdentity | undefined
    if (typeof identity?.log !== 'string') {
      identity = { rev: 0, log: randomId() }
      await table.put(identity)
    }
    return { id: identity.log, rev: await newestRev(db) }
  })
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
      .where(':id')
      .above(0)
      .until((row) => row.at >= cutoff)
      .each((row) => {
        byAge = row.rev
      })
    // The newest row always stays: it tells a context that opens later where the log stands.
    const upTo = Math.min(Math.max(byCount, byAge), keepFrom - 1, newest - 1)
    if (upTo <= 0) return 0
    // Row 0 is the log's identity: it stays.
    return table.where(':id').between(1, upTo, true, true).delete()
  })
}
