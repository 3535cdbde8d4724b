import { SyncError } from '../errors.js'
import type { SyncContext } from './context.js'
import { checkEpoch } from './epoch.js'
import { requestJson } from './http.js'
import { parsePullReply } from './protocol.js'
import { readState, syncTable, updateState } from './store.js'

/**
 * The principal a reply names is one whose writes were held at a sign-out: the leader
 * brings them back before anything else happens (see `sign-out.ts`).
 */
export class Rebind extends Error {
  constructor(readonly principal: string) {
    super('held writes come back')
  }
}

/** The error of a reply (or a 403) for another principal than the one whose data this device holds. */
export const principalChanged = (): SyncError =>
  new SyncError(
    "The server answers for another user than the one whose synced data this device holds: call feed.sync.signOut() to remove that user's data (their unsent writes are kept for them), or sign that user in again.",
    { reason: 'principal-changed', retrying: false },
  )

/**
 * Checks whose reply this is (docs/protocol.md, "Principals"), then its epoch. The first
 * principal named owns this device's synced data from then on; a reply for another one is
 * a `principal-changed` error (nothing of it is applied). When a principal whose writes were
 * held at a sign-out is named, {@link Rebind} asks the leader to bring them back first.
 * A reply that names no one (a server without principals) proves nothing either way. Returns
 * true after an epoch reset (see {@link checkEpoch}). Call it inside `exclusive`.
 */
export async function checkReply(ctx: SyncContext, reply: { epoch: string; principal?: string }): Promise<boolean> {
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
 * Before the first push after a sign-out that held writes, learns whose credentials these
 * are: a push under this client id would bind it to its principal on the server, and held
 * writes go back under the client id they were made with. One pull page, nothing applied.
 */
export async function probe(ctx: SyncContext): Promise<void> {
  if (ctx.held.size === 0 || ctx.probed || (await readState(ctx.db)).principal !== undefined) return
  ctx.checkPaused()
  const { base } = ctx.options
  const reply = parsePullReply(
    await requestJson(ctx, `${base}/pull?v=2&since=0&limit=1&clientId=${encodeURIComponent(ctx.clientId)}`),
  )
  await ctx.exclusive(() => checkReply(ctx, reply))
}
