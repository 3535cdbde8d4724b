import { syncError, type SyncContext } from './context.js'
import { ProtocolViolation, short } from './protocol.js'
import { keysTable, readState, syncTable, updateState } from './store.js'

/**
 * Compares the server's epoch (the id of its log) with the one this client synced with.
 * The first one is adopted. A different one means the server's log was recreated: this
 * client forgets its server position and what it knew of entities, and pulls the new log
 * from its start (its outbox stays). Returns true after such a reset.
 */
export async function checkEpoch(ctx: SyncContext, epoch: string): Promise<boolean> {
  const state = await readState(ctx.db)
  if (state.epoch === epoch) return false
  if (state.epoch === '') {
    await ctx.db.transaction('rw', syncTable(ctx.db), () => updateState(ctx.db, { epoch }))
    return false
  }
  // A log recreated again within a minute is a server that is broken, not restored: each
  // reset would load everything again, at once. Reported (and retried with backoff) instead.
  if (Date.now() - ctx.resetAt < EPOCH_CALM_MS) {
    throw new ProtocolViolation(
      `The server's epoch changes from reply to reply (${short(state.epoch)} → ${short(epoch)})`,
    )
  }
  await resetServerPosition(ctx, epoch, `The server's log was recreated (epoch ${state.epoch} → ${epoch})`)
  return true
}

/** How long after a reset a new epoch is taken for a broken server rather than a restored one. */
export const EPOCH_CALM_MS = 60_000

/**
 * Starts over with the server's state after its log was recreated or went back in time
 * (restored from a backup): the position and what was known of single entities are
 * forgotten; a snapshot loads next (entities the server no longer has go away, unless a
 * local write to them is unanswered: those are pushed again, on top of it), and the local
 * commits the server had acknowledged are confirmed (those it lost are reported).
 */
export async function resetServerPosition(ctx: SyncContext, epoch: string, why: string): Promise<void> {
  const { db } = ctx
  ctx.resetAt = Date.now()
  await db.transaction('rw', [syncTable(db), keysTable(db)], async () => {
    const { pushedUpTo } = await readState(db)
    await updateState(db, { serverRev: 0, epoch, refetch: true, confirm: { from: 0, upTo: pushedUpTo } })
    // Held-back server values and known revisions belong to the old log.
    await keysTable(db).clear()
  })
  ctx.report(syncError(`${why}: loading its state again.`, 'server-reset', undefined, true))
}
