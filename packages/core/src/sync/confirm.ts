import { LOG_TABLE, type LogRow } from '../log/changelog.js'
import type { SyncRejection } from '../sync-port.js'
import { syncedTables } from './apply-batch.js'
import type { SyncContext } from './context.js'
import { decodeCurrent } from './decode.js'
import { requestJson } from './http.js'
import { isChange } from './pending.js'
import { checkReply } from './principal.js'
import { parsePushReply, PROTOCOL_VERSION } from './protocol.js'
import { toPushBatch } from './push.js'
import { readState, rowsOf, syncTable, updateState, type AsideRow, type ReceiptRow } from './store.js'

/** Why a commit the server had acknowledged is reported after a reset. */
export const LOST_REASON =
  'The server no longer has this commit, which it had acknowledged (it was restored from an older backup or its log was recreated): make it again if it still matters.'

/**
 * After a reset (see `resetServerPosition`): asks the server, in confirming pushes
 * (docs/protocol.md), which of the local commits it had acknowledged it still has. Nothing
 * is stored by it; the commits it no longer has go to the rejections inbox with the code
 * `lost-on-server`, their changes and the server's current values, so that the app can offer
 * to make them again — they are never sent again by themselves. Returns false when there is
 * nothing (left) to confirm.
 */
export async function confirmRound(ctx: SyncContext): Promise<boolean> {
  const { db, options } = ctx
  const state = await readState(db)
  const range = state.confirm
  if (!range) return false
  // Commits refused, dropped or set aside were not on the server: nothing to confirm there.
  const answered = new Set(
    (await rowsOf<ReceiptRow>(db, 'receipt')).filter((row) => row.status !== 'acked').map((row) => row.rev),
  )
  for (const row of await rowsOf<AsideRow>(db, 'aside')) if (row.kind === 'push') answered.add(row.rev)
  const rows = await db
    .table<LogRow, number>(LOG_TABLE)
    .where(':id')
    .between(range.from, range.upTo, false, true)
    .filter((row) => row.source === 'local' && !answered.has(row.rev))
    .limit(options.batchSize)
    .toArray()
  const sendable = rows.flatMap((row) => {
    try {
      return [{ row, batch: toPushBatch(row) }]
    } catch {
      return [] // a damaged row was never pushed as it is
    }
  })
  const upTo = rows.at(-1)?.rev ?? range.upTo
  const lost: SyncRejection[] = []
  if (sendable.length > 0) {
    ctx.checkPaused()
    const revs = sendable.map(({ row }) => row.rev)
    const body = {
      v: PROTOCOL_VERSION,
      clientId: ctx.clientId,
      batches: sendable.map(({ batch }) => batch),
      confirm: true,
    }
    const reply = parsePushReply(
      await requestJson(ctx, `${options.base}/push${options.scopeQuery.replace('&', '?')}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
      revs,
    )
    if (await ctx.exclusive(() => checkReply(ctx, reply))) return true
    const at = Date.now()
    const synced = syncedTables(ctx)
    for (const { rev, current } of reply.rejected) {
      const row = sendable.find((item) => item.row.rev === rev)!.row
      lost.push({
        rev,
        code: 'lost-on-server',
        reason: LOST_REASON,
        changes: row.changes
          .filter(isChange)
          .map(({ type, table, key, value }) =>
            value === undefined ? { type, table, key } : { type, table, key, value },
          ),
        current: current.flatMap((wire) => {
          try {
            const change = decodeCurrent(db, synced, wire)
            return change
              ? [
                  change.value === undefined
                    ? { table: change.table, key: change.key }
                    : { table: change.table, key: change.key, value: change.value },
                ]
              : []
          } catch {
            return [] // what cannot be stored here is left out
          }
        }),
        at,
      })
    }
  }
  await ctx.exclusive(() =>
    db.transaction('rw', syncTable(db), async () => {
      for (const rejection of lost) await syncTable(db).put({ id: ['rejection', rejection.rev], ...rejection })
      const now = await readState(db)
      // A reset meanwhile asked for another confirmation: leave it.
      if (now.confirm?.upTo === range.upTo) {
        await updateState(db, { confirm: upTo >= range.upTo ? undefined : { from: upTo, upTo: range.upTo } })
      }
    }),
  )
  for (const rejection of lost) ctx.rejected(rejection)
  if (lost.length > 0) ctx.changed()
  return true
}
