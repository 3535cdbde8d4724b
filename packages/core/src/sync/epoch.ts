import { SyncError } from '../errors.js'
import type { SyncContext } from './context.js'
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
      `The sync server's epoch changes from reply to reply (${short(state.epoch)} → ${short(epoch)})`,
    )
  }
  await resetServerPosition(ctx, epoch, `The sync server's log was recreated (epoch ${state.epoch} → ${epoch})`)
  return true
}

/** How long after a reset a new epoch is taken for a broken server rather than a restored one. */
export const EPOCH_CALM_MS = 60_000

/** Starts over from the beginning of the server's log, e.g. after it went back in time. */
export async function resetServerPosition(ctx: SyncContext, epoch: string, why: string): Promise<void> {
  const { db } = ctx
  ctx.resetAt = Date.now()
  await db.transaction('rw', [syncTable(db), keysTable(db)], async () => {
    await updateState(db, { serverRev: 0, epoch })
    // Held-back server values and known revisions belong to the old log.
    await keysTable(db).clear()
  })
  ctx.report(new SyncError(`${why}: pulling it again from the start.`, { reason: 'server-reset', retrying: true }))
}
