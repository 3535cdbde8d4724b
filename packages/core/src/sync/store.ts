import type { Dexie, IndexableType, Table } from 'dexie'
import type { LogRow } from '../log/changelog.js'
import type { SetAsideItem, SyncReceipt, SyncRejection } from '../sync-port.js'
import { encodeKey } from '../util/encode-key.js'
import { randomId } from '../util/random-id.js'
import type { RemoteBatch } from './protocol.js'

/** The sync's own rows: its position, set-aside items, rejections and receipts. */
export const SYNC_TABLE = '_changecast_sync'
/** What the sync knows of single entities while they are in flux (see docs/protocol.md, "Client algorithm"). */
export const KEYS_TABLE = '_changecast_keys'
export const SYNC_STORES = { [SYNC_TABLE]: 'id', [KEYS_TABLE]: 'id, rev' } as const

/** Where this client stands. Written only by targeted updates inside transactions. */
export interface StateRow {
  id: 'state'
  clientId: string
  /** Every local changelog rev up to this one has been answered (or set aside). */
  pushedUpTo: number
  /** Every server batch up to this revision has been applied here (or skipped as known). */
  serverRev: number
  /** The server log's epoch ('' until the first answer). */
  epoch: string
  /**
   * The scopes `serverRev` covers (`*`: every scope; a JSON list otherwise), as the server
   * last named them. Undefined until the first snapshot was loaded.
   */
  scopes?: string
  /**
   * A snapshot is due: the server answered a push for other readable scopes than those of
   * the position (they changed meanwhile), so what it said may not fit this client's view,
   * or the server's log was recreated or went back (a reset).
   */
  refetch?: boolean
  /**
   * After a reset: the local commits the server had acknowledged, revs `from < rev ≤ upTo`,
   * are still to be confirmed (see `confirm.ts`): those the server no longer has are reported.
   */
  confirm?: { from: number; upTo: number }
  /**
   * Whose synced data this is: the principal the server's replies named (undefined until one
   * did). A reply naming another one stops the sync (see `principal.ts`).
   */
  principal?: string
}

/**
 * A local commit that was not answered when its principal signed out (`signOut()`): kept
 * apart, under the client id it was made with, until that principal is named again (then it
 * is pushed) or the app discards it.
 */
export interface HeldRow {
  id: ['held', number]
  rev: number
  principal: string
  clientId: string
  row: LogRow
}

/** Whether a client must load a snapshot before it pulls or streams. */
export const needsSnapshot = (state: StateRow): boolean => state.scopes === undefined || state.refetch === true

/**
 * Remembers that a snapshot is due (a reply named other scopes than the position's): one
 * that fails now is still due when the scopes come back before it loads (A → B → A), with
 * writes made under B in between.
 */
export const markRefetch = (db: Dexie): Promise<void> =>
  db.transaction('rw', syncTable(db), () => updateState(db, { refetch: true }))

/** The text {@link StateRow.scopes} keeps for a server's list of scopes. */
export const scopeKey = (scopes: readonly string[] | undefined): string => (scopes ? JSON.stringify(scopes) : '*')

/**
 * One entity in flux. `rev`: the server revision the local value is known to be at least as
 * new as — remote changes at or below it are outdated. `base`: the server's value, held
 * back because a local write to the entity is still waiting for the server's answer
 * (`{}` when the server has no such entity).
 */
export interface KeyRow {
  id: string
  table: string
  key: IndexableType
  rev: number
  base?: { value?: unknown }
}

export type AsideRow = Omit<SetAsideItem, 'changes'> & {
  id: ['aside', SetAsideItem['kind'], number]
  /** The changelog row (`push`) or the server batch (`apply`), as it was. */
  row?: LogRow
  batch?: RemoteBatch
  /** `apply`, when the batch itself could not be kept: what it changes. */
  changes?: SetAsideItem['changes']
  /** `push`: send it again in the next round. */
  retry?: boolean
  /** `apply`: entities written since (by the server or this client), which a retry must not touch. */
  superseded?: string[]
}

export type RejectionRow = SyncRejection & { id: ['rejection', number] }
export type ReceiptRow = SyncReceipt & { id: ['receipt', number] }
type Row = StateRow | AsideRow | RejectionRow | ReceiptRow | HeldRow

/** Identifies an entity across tables, with keys compared as IndexedDB compares them. */
export const keyId = (table: string, key: unknown): string => `${table}\u0000${encodeKey(key)}`

export const syncTable = (db: Dexie) => db.table<Row, IndexableType>(SYNC_TABLE)
export const keysTable = (db: Dexie) => db.table<KeyRow, string>(KEYS_TABLE)

/** Reads the state row inside the current transaction. */
export async function readState(db: Dexie): Promise<StateRow> {
  return (await syncTable(db).get('state')) as StateRow
}

/** Creates the state row when missing, and returns it. */
export function loadState(db: Dexie): Promise<StateRow> {
  const table = syncTable(db)
  return db.transaction('rw', table, async () => {
    const row = (await table.get('state')) as Partial<StateRow> | undefined
    // Rows written by protocol 1 have no epoch.
    if (row?.clientId) return { pushedUpTo: 0, serverRev: 0, epoch: '', ...row } as StateRow
    const created: StateRow = { id: 'state', clientId: randomId(), pushedUpTo: 0, serverRev: 0, epoch: '' }
    await table.put(created)
    return created
  })
}

/** Changes fields of the state row (a targeted update: never a write-back of an old copy). */
export async function updateState(db: Dexie, change: Partial<Omit<StateRow, 'id' | 'clientId'>>): Promise<void> {
  await (syncTable(db) as unknown as Table<StateRow, string>).update('state', change)
}

/** Rows of one kind (`aside`, `rejection`, `receipt`), in key order. */
export function rowsOf<R extends Row>(db: Dexie, kind: string): Promise<R[]> {
  return syncTable(db).where('id').between([kind], [kind, []]).toArray() as unknown as Promise<R[]>
}
