import type { Dexie, IndexableType, Table, Transaction } from 'dexie'
import { SyncError, type SyncErrorReason } from '../errors.js'
import { LOG_TABLE } from '../log/changelog.js'
import type { SyncHost, SyncRejection } from '../sync-port.js'
import type { Sender } from './http.js'
import type { ResolvedOptions } from './options.js'
import type { PendingKeys } from './pending.js'
import { KEYS_TABLE, SYNC_TABLE } from './store.js'

/** What the leader's sync steps (push, pull, stream, apply) share. */
export interface SyncContext extends Sender {
  readonly db: Dexie
  readonly host: SyncHost
  readonly options: ResolvedOptions
  /** Aborted when this context stops leading. */
  readonly signal: AbortSignal
  /** Throws a `paused` {@link SyncError} after `pause()`: no new request goes out. */
  checkPaused(): void
  readonly clientId: string
  readonly pending: PendingKeys
  /** Set-aside server batches (by revision) and the entities they write that nothing has written since. */
  readonly asideApply: Map<number, string[]>
  /** Runs `task` once the sync's database work before it is done: never two at once. */
  exclusive<T>(task: () => Promise<T>): Promise<T>
  report(error: SyncError): void
  /** A rejection was recorded (called after its transaction committed). */
  rejected(rejection: SyncRejection): void
  /** The outbox, set-aside items or rejections changed. */
  changed(): void
  /** True while a snapshot loads: streamed batches wait for the pull that follows it. */
  bootstrapping: boolean
  /** When this client last reset its server position (ms; 0: never, since it leads). */
  resetAt: number
  /** Principals whose writes are held since they signed out (and the server named). */
  readonly held: Set<string>
  /** A reply was checked since this context leads: whose credentials these are is known. */
  probed: boolean
  /** Shows a snapshot's progress in the status (undefined: done). */
  progress(loaded?: number, total?: number): void
}

/** A {@link SyncError} the sync does not retry by itself (unless `retrying`). */
export const syncError = (message: string, reason: SyncErrorReason, rev?: number, retrying = false): SyncError =>
  new SyncError(message, { reason, retrying, rev })

/** The database closed: sync resumes when it opens. */
export const closedError = (): SyncError => syncError('The database is closed: sync resumes when it opens.', 'closed')

/** An entity change ready to be written here: key decoded, value checked against the table. */
export interface EntityChange {
  type: 'create' | 'update' | 'delete'
  table: string
  key: IndexableType
  /** {@link keyId} of table and key. */
  id: string
  value?: unknown
  /** A delete that only removes the entity from this client's view (scopes). */
  removed?: boolean
}

/** The change that makes an entity hold `value` (`undefined`: absent). */
export const entityChange = (table: string, key: IndexableType, id: string, value: unknown): EntityChange =>
  value === undefined ? { type: 'delete', table, key, id } : { type: 'update', table, key, id, value }

/** A read-write transaction over `tables` and the sync's own stores. */
export function syncTransaction<T>(
  ctx: Pick<SyncContext, 'db'>,
  tables: Iterable<string>,
  body: (transaction: Transaction) => Promise<T>,
): Promise<T> {
  return ctx.db.transaction('rw', [...new Set(tables), SYNC_TABLE, KEYS_TABLE, LOG_TABLE], body)
}

/**
 * Writes entity changes in order, as runs of bulk puts and deletes per table. `adds`: tables
 * where the entities are most likely new (a snapshot into a table that was empty): their
 * values are added, which reads no previous values; a key that exists after all is put.
 */
export async function writeChanges(
  db: Dexie,
  changes: readonly EntityChange[],
  adds?: ReadonlySet<string>,
): Promise<void> {
  for (let i = 0; i < changes.length;) {
    const { table, type } = changes[i]!
    let end = i + 1
    while (
      end < changes.length &&
      changes[end]!.table === table &&
      (changes[end]!.type === 'delete') === (type === 'delete')
    )
      end++
    const run = changes.slice(i, end)
    const target = db.table<unknown, IndexableType>(table)
    if (type === 'delete') await target.bulkDelete(run.map((change) => change.key))
    else if (adds?.has(table)) await addOrPut(target, run)
    else await store(target, run, 'bulkPut')
    i = end
  }
}

const store = (target: Table<unknown, IndexableType>, run: readonly EntityChange[], method: 'bulkAdd' | 'bulkPut') =>
  target[method](
    run.map((change) => change.value),
    (target.schema.primKey.keyPath ? undefined : run.map((change) => change.key)) as never,
  )

/** Adds the values; those whose key exists (and only those) are then put. */
async function addOrPut(target: Table<unknown, IndexableType>, run: readonly EntityChange[]): Promise<void> {
  try {
    await store(target, run, 'bulkAdd')
  } catch (error) {
    const failures = (error as { failuresByPos?: Record<number, Error> }).failuresByPos
    if (!failures || Object.values(failures).some((failure) => failure.name !== 'ConstraintError')) throw error
    await store(
      target,
      Object.keys(failures).map((at) => run[Number(at)]!),
      'bulkPut',
    )
  }
}
