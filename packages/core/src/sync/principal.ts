import type { SyncError } from '../errors.js'
import { syncError, type SyncContext } from './context.js'
import { checkEpoch, resetServerPosition } from './epoch.js'

type Reply = { epoch: string; principal?: string }
import { keysTable, readState, syncTable, updateState } from './store.js'

/**
 * The principal a reply names is one whose writes were held at a sign-out: the leader
 * brings them back before anything else happens (see `sign-out.ts`).
 */
export class Rebind extends Error {
  constructor(readonly principal: string) {
    super(principal)
  }
}

/** The error of a reply (or a 403) for another principal than the one whose data this device holds. */
export const principalChanged = (): SyncError =>
  syncError("These credentials are another user's than the synced data's: signOut() first.", 'principal-changed')

/**
 * Checks whose reply this is (docs/protocol.md, "Principals"), then its epoch. The first
 * principal named owns this device's synced data from then on; a reply for another one is
 * a `principal-changed` error (nothing of it is applied). When a principal whose writes were
 * held at a sign-out is named, {@link Rebind} asks the leader to bring them back first.
 * A reply that names no one (a server without principals) proves nothing either way. Returns
 * true after an epoch reset (see {@link checkEpoch}). Call it inside `exclusive`.
 */
export async function checkReply(ctx: SyncContext, reply: Reply): Promise<boolean> {
  const { db } = ctx
  const named = reply.principal
  const { principal } = await readState(db)
  ctx.probed = true
  if (named === undefined) return checkEpoch(ctx, reply.epoch)
  if (principal === undefined) {
    if (ctx.held.has(named)) throw new Rebind(named)
    await db.transaction('rw', syncTable(db), () => updateState(db, { principal: named }))
  } else if (named !== principal) {
    throw principalChanged()
  }
  return checkEpoch(ctx, reply.epoch)
}

/**
 * The highest revision the server acknowledged to this client (an ack, or a rejection's
 * `serverRev`) that its position has not passed: read before a request is sent, so that
 * an answer made before a later ack arrived is not taken for a log that went back.
 */
export const acknowledged = async (ctx: SyncContext): Promise<number> =>
  (
    await keysTable(ctx.db)
      .orderBy('rev')
      .reverse()
      .filter((row) => !row.base)
      .first()
  )?.rev ?? 0

/**
 * {@link checkReply} in `exclusive`, then that the server's log reaches this client's
 * position `since` (its `head`, or `upTo`) and, when `head` is the newest revision (a
 * stream's hello, a last page), every revision it had acknowledged to this client when
 * the request was sent (`acked`, see {@link acknowledged}): one that went back (restored
 * from an older backup) resets the position too. True after a reset.
 */
export const checkLog = (ctx: SyncContext, reply: Reply, since: number, head: number, acked = 0): Promise<boolean> =>
  ctx.exclusive(async () => {
    if (await checkReply(ctx, reply)) return true
    // An own write known at a revision above head (its ack): head went back, even to since.
    const reach = Math.max(acked, since)
    if (head >= reach) return false
    await resetServerPosition(ctx, reply.epoch, `The sync server went back from revision ${reach} to ${head}`)
    return true
  })
