import { applyBatch } from './apply-batch.js'
import { bootstrap } from './bootstrap.js'
import type { SyncContext } from './context.js'
import { acknowledged, checkLog } from './principal.js'
import { requestJson } from './http.js'
import { parsePullReply, ProtocolViolation } from './protocol.js'
import { keysTable, markRefetch, needsSnapshot, readState, scopeKey, syncTable, updateState } from './store.js'

/** A client that never loaded a snapshot loads one (before it pushes, so its stream has a position to start from). */
export async function ensureSnapshot(ctx: SyncContext, pulling: () => void): Promise<void> {
  if (!needsSnapshot(await readState(ctx.db))) return
  pulling()
  await bootstrap(ctx, false)
}

/** Pulls server batches after this client's position, page by page, until the server has no more. */
export async function pullAll(ctx: SyncContext): Promise<void> {
  const { db, options } = ctx
  for (;;) {
    ctx.checkPaused()
    const state = await readState(db)
    // Never loaded a snapshot: a new client starts from the server's state, not its log.
    if (needsSnapshot(state)) {
      await bootstrap(ctx, false)
      continue
    }
    const since = state.serverRev
    const query = `v=2&since=${since}&limit=${options.batchSize}&clientId=${encodeURIComponent(ctx.clientId)}${options.scopeQuery}`
    const acked = await acknowledged(ctx)
    const reply = parsePullReply(await requestJson(ctx, `${options.base}/pull?${query}`))
    const reset = await checkLog(ctx, reply, since, reply.upTo, reply.more ? 0 : acked)
    if (reset) continue
    // The server compacted past this position: a new snapshot.
    if (reply.mustRefetch) {
      await bootstrap(ctx, true)
      continue
    }
    // This client's scopes changed: a new snapshot too (remembered, then loaded above).
    if (scopeKey(reply.scopes) !== state.scopes) {
      await markRefetch(db)
      continue
    }
    // `more` asks for the next page at once: a page that moved nothing would be asked again for ever.
    if (reply.more && reply.upTo <= since) {
      throw new ProtocolViolation(`The server said more: true, but sent nothing past revision ${since}`)
    }
    for (const batch of reply.batches) await ctx.exclusive(() => applyBatch(ctx, batch))
    await ctx.exclusive(() => advance(ctx, reply.upTo))
    if (!reply.more) return
  }
}

/**
 * Moves this client's server position to `upTo` (the server has nothing more for it up
 * to there), and forgets known revisions it has passed: they cannot hold anything back now.
 * (A revision this client learned from an ack above a last page's `upTo` made `checkLog`
 * reset the position before this.)
 */
export async function advance(ctx: SyncContext, upTo: number): Promise<void> {
  const { db } = ctx
  await db.transaction('rw', [syncTable(db), keysTable(db)], async () => {
    const { serverRev } = await readState(db)
    const position = Math.max(serverRev, upTo)
    if (position > serverRev) await updateState(db, { serverRev: position })
    await keysTable(db)
      .where('rev')
      .belowOrEqual(position)
      .filter((row) => row.base === undefined)
      .delete()
  })
}
