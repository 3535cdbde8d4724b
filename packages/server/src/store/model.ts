import { wireKeyText, type WireChange } from '@changecast/core/protocol'
import type { Queryable } from '../db/port.js'
import type { Names } from '../names.js'

/** A stored batch, as read back: its changes (as JSON text) visible to the reader. */
export interface StoredBatch {
  rev: number
  origin: string
  tx: string
  at: number
  changes: StoredChange[]
}

/** One stored change: its scope, the entity it names, and its JSON text as the protocol carries it. */
export interface StoredChange {
  scope: string
  entity: string
  removed: boolean
  json: string
}

/** The scope of entities when the server has no `scopeOf`. */
export const DEFAULT_SCOPE = 'default'

/**
 * Names the one scope an entity belongs to (e.g. `project:42`), from its value. Called for
 * every created or updated entity; a deleted one stays in the scope it was in.
 */
export type ScopeOf = (entity: { table: string; key: unknown; value: unknown }) => string

/** The scopes a request may read and write: `undefined` is every scope. */
export interface Access {
  read?: ReadonlySet<string>
  write?: ReadonlySet<string>
  /** Who asks (named in the server's log when a write is refused). */
  principal?: string
}

/** How an entity is named in the store's maps: table and key text. */
export const entityId = (table: string, keyText: string) => `${table}\u0000${keyText}`
/** The key text of a change (its index key in the database). */
export const keyTextOf = (change: Pick<WireChange, 'key'>) => wireKeyText(change.key)
/** The log's epoch, newest revision and compaction horizon. `lock`: hold the row (every write does) until the transaction ends. */
export async function readMeta(
  db: Queryable,
  t: Names,
  lock = false,
): Promise<{ epoch: string; head: number; horizon: number }> {
  const [row] = await db.query<{ epoch: string; head: string | number; horizon: string | number }>(
    `select epoch, head, horizon from ${t.meta} where id = 1${lock ? ' for update' : ''}`,
  )
  return { epoch: row!.epoch, head: Number(row!.head), horizon: Number(row!.horizon) }
}
