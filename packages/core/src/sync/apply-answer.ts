import type { IndexableType } from 'dexie'
import type { LogRow } from '../log/changelog.js'
import type { SyncRejection } from '../sync-port.js'
import { saveKeys, supersede, syncedTables } from './apply-batch.js'
import {
  entityChange,
  syncError,
  syncTransaction,
  writeChanges,
  type EntityChange,
  type SyncContext,
} from './context.js'
import { decodeCurrent } from './decode.js'
import { isChange } from './pending.js'
import { rebase } from './rebase.js'
import type { PushReply } from './protocol.js'
import { keyId, keysTable, readState, syncTable, updateState, type KeyRow } from './store.js'

/** How the server answered the last pushed write to one entity. */
interface Outcome {
  table: string
  key: IndexableType
  id: string
  /** The ack's server revision, or the revision a rejection's current values were read at. */
  rev: number
  /** Rejected, or acked with the entity out of this client's view: the server said what it holds. */
  told: boolean
  /** The server's state of the entity (`undefined` when the server did not say). */
  current?: { value?: unknown }
  /** Acked: the entity as the answered commit left it, which is the server's value at `rev` (it merged nothing else in, or `current` says otherwise). */
  sent?: { value?: unknown }
}

/**
 * Records the server's answer to pushed changelog rows, in one transaction:
 * - the outbox moves past them, rejections and receipts are stored;
 * - per entity, the answer at the newest server revision counts (the last one, between equals);
 * - an entity whose last answered write is acked stays as it is, known at that revision —
 *   unless the server's value held back for it is newer (two pushes crossed): then that;
 * - an entity whose last answered write is rejected takes the server's current value (or
 *   the held-back one, whichever is newer); so does one the ack lists in `current` (the
 *   write put it in a scope this client may write but not read: it goes away here);
 * - an entity with a later local write still unanswered keeps its local value; what was
 *   learned becomes its base.
 */
export async function applyAnswer(ctx: SyncContext, sent: readonly LogRow[], reply: PushReply): Promise<void> {
  const { db } = ctx
  const synced = syncedTables(ctx)
  const acked = new Map(reply.acked.map((ack) => [ack.rev, ack]))
  const refused = new Map(reply.rejected.map((rejection) => [rejection.rev, rejection]))
  const at = Date.now()
  const rejections: SyncRejection[] = []
  const outcomes = new Map<string, Outcome>()
  const removed = new Set<string>()
  for (const row of sent) {
    const { rev } = row
    const rejection = refused.get(rev)
    const ack = acked.get(rev)
    const serverRev = rejection?.serverRev ?? ack!.serverRev
    // Rejected: the server's state of the entities; acked: those gone from this client's view.
    const values = new Map<string, EntityChange>()
    for (const wire of (rejection ?? ack)?.current ?? []) {
      try {
        const change = decodeCurrent(db, synced, wire)
        if (change) values.set(change.id, change)
      } catch (error) {
        ctx.report(syncError(`Rev ${rev}: unusable current value: ${(error as Error).message}`, 'protocol', rev))
      }
    }
    for (const { table, key, value } of row.changes) {
      if (!synced(table)) continue
      const id = keyId(table, key)
      const current = values.get(id)
      // The answer of the newest server revision decides, not the newest local commit: a
      // commit refused once (its reply lost) may be accepted later than the commits after it.
      if ((outcomes.get(id)?.rev ?? -1) > serverRev) continue
      outcomes.set(id, {
        table,
        key,
        id,
        rev: serverRev,
        told: !!(rejection || current),
        current: current && base(current),
        sent: { value }, // a delete's: none
      })
      // Out of view (a write into a scope it may not read): a removal here, not a delete.
      if (!rejection && current?.type === 'delete') removed.add(id)
    }
    for (const change of values.values()) {
      if ((outcomes.get(change.id)?.rev ?? -1) < serverRev) {
        outcomes.set(change.id, { ...change, rev: serverRev, told: true, current: base(change) })
      }
    }
    if (rejection) {
      rejections.push({
        rev,
        code: rejection.code ?? 'rejected',
        reason: rejection.reason,
        // What was refused: the commit's changes as they were sent.
        changes: row.changes
          .filter(isChange)
          .map(({ type, table, key, value }) =>
            value === undefined ? { type, table, key } : { type, table, key, value },
          ),
        current: [...values.values()].map(({ table, key, value }) =>
          value === undefined ? { table, key } : { table, key, value },
        ),
        at,
      })
    }
  }

  const answered = new Set(sent.map((row) => row.rev))
  const list = [...outcomes.values()]
  await syncTransaction(
    ctx,
    list.map((outcome) => outcome.table),
    async (transaction) => {
      await ctx.pending.refresh(db)
      const state = await readState(db)
      const entries = await keysTable(db).bulkGet(list.map((outcome) => outcome.id))
      const known = new Map<string, KeyRow | undefined>()
      const writes: EntityChange[] = []
      for (const [i, outcome] of list.entries()) {
        const { table, key, id } = outcome
        const entry = entries[i]
        const rev = Math.max(entry?.rev ?? 0, outcome.rev)
        // What the server holds now, as far as this client knows; undefined: this client's own
        // write, as the local value is. Once a server value came in meanwhile, the local value
        // may be rebased over it: the acked commit's own value is the server's then.
        const newer = entry?.base && entry.rev > outcome.rev ? entry.base : undefined
        const server =
          newer ?? (outcome.told ? (outcome.current ?? entry?.base) : entry?.base ? outcome.sent : undefined)
        if (ctx.pending.has(id, answered)) {
          known.set(id, { id, table, key, rev, base: server })
          const local = await rebase(ctx, table, key, id, server, answered)
          if (local) writes.push(local)
          continue
        }
        // Not waiting for this answer (a confirmation, after a reset, of a commit acked before
        // it): the local value is the server's as of the position, newer than a `current`
        // read at or below it.
        if (server && (ctx.pending.has(id) || outcome.rev > state.serverRev))
          writes.push(entityChange(table, key, id, server.value))
        known.set(id, rev > state.serverRev ? { id, table, key, rev } : undefined)
      }
      if (writes.length > 0) {
        ctx.host.markRemote(transaction, 'server', `${ctx.clientId}.answer.${Math.min(...answered)}`, { removed })
        await writeChanges(db, writes)
      }
      await supersede(
        ctx,
        list.map((outcome) => outcome.id),
      )
      await saveKeys(ctx, known)
      const table = syncTable(db)
      await table.bulkPut(
        rejections.flatMap((rejection) => [
          { id: ['rejection', rejection.rev], ...rejection },
          { id: ['receipt', rejection.rev], rev: rejection.rev, status: 'rejected', reason: rejection.reason },
        ]),
      )
      await table.bulkDelete([...answered].map((rev) => ['aside', 'push', rev]))
      const upTo = Math.max(...answered)
      if (upTo > state.pushedUpTo) await updateState(db, { pushedUpTo: upTo })
    },
  )
  for (const rev of answered) ctx.pending.remove(rev)
  for (const rejection of rejections) ctx.rejected(rejection)
  ctx.changed()
}

const base = (change: EntityChange): { value?: unknown } => (change.type === 'delete' ? {} : { value: change.value })
