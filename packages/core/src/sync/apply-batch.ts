import { syncError, syncTransaction, writeChanges, type EntityChange, type SyncContext } from './context.js'
import { decodeChange } from './decode.js'
import { rebase } from './rebase.js'
import { checkDepth, decodeWireKey, type RemoteBatch } from './protocol.js'
import { keyId, keysTable, readState, syncTable, updateState, type AsideRow, type KeyRow } from './store.js'

/** Errors that say the batch itself cannot be written here (as opposed to a closed database, a full disk…). */
const UNWRITABLE = new Set(['WireError', 'BulkError', 'ConstraintError', 'DataError', 'DataCloneError', 'TypeError'])

/**
 * Applies one server batch in one transaction, at most once (by server revision), and
 * never over something newer: an entity with a local write still waiting for the
 * server's answer keeps the local value, and the server's is kept as its base; an entity
 * known at a newer revision (this client's own acked write, a rejection's current value)
 * is left alone. A batch that cannot be applied is set aside, and the pull goes on.
 */
export async function applyBatch(ctx: SyncContext, batch: RemoteBatch): Promise<void> {
  let changes: EntityChange[]
  try {
    // Whatever fails while reading the batch is the batch's own fault.
    changes = decodeBatch(ctx, batch)
  } catch (error) {
    return setAsideBatch(ctx, batch, String((error as Error)?.message ?? error))
  }
  try {
    await writeBatch(ctx, batch, changes, 'apply')
  } catch (error) {
    if (!UNWRITABLE.has((error as Error)?.name)) throw error
    await setAsideBatch(ctx, batch, (error as Error).message)
  }
}

export function decodeBatch(ctx: SyncContext, batch: RemoteBatch): EntityChange[] {
  const synced = syncedTables(ctx)
  return batch.changes.map((wire) => decodeChange(ctx.db, synced, wire)).filter((change) => change !== undefined)
}

/** Whether a table is synced: declared here, and captured. */
export function syncedTables({ db, host }: Pick<SyncContext, 'db' | 'host'>): (table: string) => boolean {
  const declared = new Set(db.tables.map((table) => table.name))
  return (table) => declared.has(table) && host.isCaptured(table)
}

/**
 * `apply`: a server batch after this client's position, which it then moves to. `retry`: a
 * set-aside batch applied again, behind the position, only where nothing wrote since.
 * `snapshot`: a page of a snapshot at revision `batch.rev` (the position moves at its end).
 * `adds`: tables whose entities are most likely new here (see {@link writeChanges}).
 */
export async function writeBatch(
  ctx: SyncContext,
  batch: RemoteBatch,
  changes: EntityChange[],
  mode: 'apply' | 'retry' | 'snapshot',
  adds?: ReadonlySet<string>,
): Promise<void> {
  const retry = mode === 'retry'
  const { db } = ctx
  let logged: (() => number | undefined) | undefined
  await syncTransaction(
    ctx,
    changes.map((change) => change.table),
    async (transaction) => {
      const state = await readState(db)
      if (mode === 'apply' && batch.rev <= state.serverRev) return
      await ctx.pending.refresh(db)
      // The records to write (`undefined`: delete it).
      const known = new Map<string, KeyRow | undefined>()
      const recorded = new Map<string, KeyRow>()
      // A snapshot into a client that knows nothing in particular (a new one) reads no records.
      const none = mode === 'snapshot' && (await keysTable(db).count()) === 0
      const found = none ? [] : await keysTable(db).bulkGet(changes.map((change) => change.id))
      for (const entry of found) if (entry) recorded.set(entry.id, entry)
      const skip = retry ? new Set((await asideRow(ctx, batch.rev))?.superseded) : undefined
      // What to write: server values, and pending entities whose local writes are re-applied over one.
      const writes: EntityChange[] = []
      for (const change of changes) {
        // What was known before this batch: a change earlier in the same batch (one commit that
        // wrote the entity twice) is never newer than a later one.
        const entry = recorded.get(change.id)
        // A snapshot at a revision is the truth of this client's view at it (what a record at
        // that same revision knew may have been seen through other scopes).
        const newer = entry && (mode === 'snapshot' ? entry.rev > batch.rev : entry.rev >= batch.rev)
        if (skip?.has(change.id) || newer) continue
        if (ctx.pending.has(change.id)) {
          const base = change.type === 'delete' ? {} : { value: change.value }
          known.set(change.id, { id: change.id, table: change.table, key: change.key, rev: batch.rev, base })
          const local = await rebase(ctx, change.table, change.key, change.id, base)
          if (local) writes.push(local)
        } else {
          writes.push(change)
          if (entry) known.set(change.id, undefined)
        }
      }
      if (writes.length > 0) {
        const removed = new Set(writes.filter((change) => change.removed).map((change) => change.id))
        logged = ctx.host.markRemote(transaction, batch.origin, batch.tx, {
          removed: removed.size > 0 ? removed : undefined,
          unlogged: mode === 'snapshot',
        })
        await writeChanges(db, writes, adds)
        await supersede(
          ctx,
          writes.map((change) => change.id),
        )
      }
      await saveKeys(ctx, known)
      if (mode === 'apply') await updateState(db, { serverRev: batch.rev })
    },
  )
  ctx.pending.remote(logged?.())
}

/** Writes the key rows of `known`: a row, or `undefined` to delete it. */
export async function saveKeys(ctx: SyncContext, known: Map<string, KeyRow | undefined>): Promise<void> {
  const table = keysTable(ctx.db)
  const puts = [...known.values()].filter((row) => row !== undefined)
  const deletes = [...known].filter(([, row]) => row === undefined).map(([id]) => id)
  if (puts.length > 0) await table.bulkPut(puts)
  if (deletes.length > 0) await table.bulkDelete(deletes)
}

/** Marks entities as written since: a retry of a set-aside batch must not put older values over them. */
export async function supersede(ctx: SyncContext, ids: string[]): Promise<void> {
  if (ctx.asideApply.size === 0) return
  const written = new Set(ids)
  for (const [rev, open] of ctx.asideApply) {
    const hit = open.filter((id) => written.has(id))
    if (hit.length === 0) continue
    ctx.asideApply.set(
      rev,
      open.filter((id) => !written.has(id)),
    )
    await syncTable(ctx.db)
      .where('id')
      .equals(['aside', 'apply', rev])
      .modify((row) => {
        const aside = row as AsideRow
        aside.superseded = [...(aside.superseded ?? []), ...hit]
      })
  }
}

const asideRow = (ctx: SyncContext, rev: number) =>
  syncTable(ctx.db).get(['aside', 'apply', rev]) as Promise<AsideRow | undefined>

/** Sets a batch aside and moves past it, so it blocks nothing. */
async function setAsideBatch(ctx: SyncContext, batch: RemoteBatch, reason: string): Promise<void> {
  const { db } = ctx
  const changes = summary(batch)
  const { rev } = batch
  const row: AsideRow = { id: ['aside', 'apply', rev], kind: 'apply', rev, reason, at: Date.now(), superseded: [] }
  // A batch nested too deep to store is kept as a summary (it could never be applied anyway).
  try {
    checkDepth(batch)
    row.batch = batch
  } catch {
    row.changes = changes.map(({ type, table, key }) => ({ type, table, key }))
  }
  let stored = false
  await syncTransaction(ctx, [], async () => {
    const state = await readState(db)
    if (rev <= state.serverRev) return
    await syncTable(db).put(row)
    await updateState(db, { serverRev: rev })
    stored = true
  })
  if (!stored) return
  ctx.asideApply.set(
    batch.rev,
    changes.map((change) => change.id),
  )
  ctx.report(syncError(`Server batch ${batch.rev} set aside: ${reason}`, 'not-applicable', batch.rev))
  ctx.changed()
}

/** The entities a batch names, as far as they can be read. */
export function summary(batch: RemoteBatch): EntityChange[] {
  const changes: EntityChange[] = []
  for (const wire of Array.isArray(batch.changes) ? batch.changes : []) {
    try {
      const key = decodeWireKey(wire.key)
      const table = String(wire.table)
      changes.push({ type: wire.type, table, key, id: keyId(table, key) })
    } catch {
      // An unreadable key: the summary leaves it out.
    }
  }
  return changes
}
