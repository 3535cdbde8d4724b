import { LOG_TABLE, type LogRow } from '../log/changelog.js'
import { applyAnswer } from './apply-answer.js'
import { syncError, syncTransaction, type SyncContext } from './context.js'
import { requestJson } from './http.js'
import { idsOf, isChange } from './pending.js'
import { checkReply } from './principal.js'
import {
  checkWireValue,
  short,
  encodeWireKey,
  LIMITS,
  parsePushReply,
  PROTOCOL_VERSION,
  WireError,
  type PushBatch,
  type WireChange,
} from './protocol.js'
import {
  markRefetch,
  readState,
  rowsOf,
  scopeKey,
  syncTable,
  updateState,
  type AsideRow,
  type ReceiptRow,
} from './store.js'

const TYPES = new Set(['create', 'update', 'delete'])
const encoder = new TextEncoder()

/** Why a commit the server had acknowledged is reported after a reset (code `lost-on-server`). */
export const LOST_REASON = 'The server lost this acknowledged commit (restored from a backup): make it again if needed.'

/**
 * Pushes the next part of the outbox (set-aside rows the app retries first, then
 * unanswered changelog rows, oldest first) and records the answer. A row that cannot be
 * sent — a value JSON cannot carry, a commit over the batch size limit, a damaged row —
 * is set aside and reported; the rows after it go on. Returns false when there was
 * nothing left to push. `onSend` is called before the request goes out.
 *
 * After a reset (see `resetServerPosition`) the commits the server had acknowledged come
 * first, in confirming pushes (docs/protocol.md): the server stores nothing, acks those it
 * still has and rejects the others, which go to the rejections inbox as `lost-on-server`
 * with their changes — never sent again by themselves.
 */
export async function pushRound(ctx: SyncContext, onSend: () => void = () => {}): Promise<boolean> {
  const { db, options } = ctx
  const { pushedUpTo, confirm } = await readState(db)
  const aside = await rowsOf<AsideRow>(db, 'aside')
  const skip = new Set(aside.filter((row) => row.kind === 'push').map((row) => row.rev))
  const log = db.table<LogRow, number>(LOG_TABLE).where(':id')
  let candidates: LogRow[]
  if (confirm) {
    // Commits refused, dropped or set aside were not on the server: nothing to confirm there.
    for (const row of await rowsOf<ReceiptRow>(db, 'receipt')) if (row.status !== 'acked') skip.add(row.rev)
    candidates = await log
      .between(confirm.from, confirm.upTo, false, true)
      // A row emptied at a sign-out (`unlogged`) holds nothing to confirm.
      .filter((row) => row.source === 'local' && !row.unlogged && !skip.has(row.rev))
      .limit(options.batchSize)
      .toArray()
  } else {
    const fresh = await log
      .above(pushedUpTo)
      .filter((row) => row.source === 'local' && !skip.has(row.rev))
      .limit(options.batchSize)
      .toArray()
    candidates = aside
      .filter((row) => row.kind === 'push' && row.retry && row.row)
      .map((row) => row.row!)
      .concat(fresh)
      .slice(0, options.batchSize)
  }
  const confirmed = async (upTo = confirm!.upTo): Promise<void> => {
    await db.transaction('rw', syncTable(db), async () => {
      // A reset meanwhile asked for another confirmation: leave it.
      if ((await readState(db)).confirm?.upTo !== confirm!.upTo) return
      await updateState(db, { confirm: upTo < confirm!.upTo ? { from: upTo, upTo: confirm!.upTo } : undefined })
    })
  }
  if (candidates.length === 0) {
    if (!confirm) return false
    await confirmed()
    return true
  }

  const sent: LogRow[] = []
  const parts: string[] = []
  let size = 0
  let setAside = 0
  for (const row of candidates) {
    let json: string
    try {
      json = JSON.stringify(toPushBatch(row))
      const bytes = encoder.encode(json).length
      if (bytes > LIMITS.batchBytes) {
        throw new WireError(`the commit is ${bytes} bytes, over the ${LIMITS.batchBytes}-byte batch limit`)
      }
      if (size + bytes > LIMITS.pushBytes && sent.length > 0) break
      size += bytes
    } catch (error) {
      // A commit that cannot be sent now was never on the server: there is nothing to confirm.
      if (confirm) continue
      await setAsideRow(ctx, row, (error as Error).message)
      setAside = Math.max(setAside, row.rev)
      continue
    }
    sent.push(row)
    parts.push(json)
  }
  const last = (sent.at(-1) ?? candidates.at(-1)!).rev
  if (sent.length === 0) {
    // Everything in this part was set aside: the outbox moves past it.
    if (confirm) await confirmed(last)
    else if (setAside > pushedUpTo)
      await db.transaction('rw', syncTable(db), () => updateState(db, { pushedUpTo: setAside }))
    return true
  }
  const revs = sent.map((row) => row.rev)
  ctx.checkPaused()
  onSend()
  const reply = parsePushReply(
    await requestJson(ctx, `${options.base}/push${options.scopeQuery.replace('&', '?')}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': `${ctx.clientId}:${revs[0]}-${revs[revs.length - 1]}`,
      },
      body: `{"v":${PROTOCOL_VERSION},"clientId":${JSON.stringify(ctx.clientId)},"batches":[${parts.join(',')}]${confirm ? ',"confirm":true' : ''}}`,
    }),
    revs,
  )
  await ctx.exclusive(async () => {
    // A reset meanwhile: what this confirmation said belongs to the old log.
    if ((await checkReply(ctx, reply)) && confirm) return
    if (confirm) {
      for (const rejection of reply.rejected) Object.assign(rejection, { code: 'lost-on-server', reason: LOST_REASON })
    }
    await applyAnswer(ctx, sent, reply)
    if (confirm) return confirmed(last)
    // Taken for other scopes than the position's (the user's scopes changed meanwhile): the
    // rejections' current values and what the acks left in view. A snapshot puts this client's view right.
    const state = await readState(ctx.db)
    if (state.scopes !== undefined && scopeKey(reply.scopes) !== state.scopes) await markRefetch(ctx.db)
  })
  return true
}

/** The batch pushed for a changelog row; throws {@link WireError} when it cannot be sent as it is. */
export function toPushBatch(row: LogRow): PushBatch {
  if (!Array.isArray(row.changes) || typeof row.tx !== 'string' || typeof row.at !== 'number') {
    throw new WireError('the changelog row is damaged')
  }
  const changes = row.changes.map((logged, i): WireChange => {
    if (!isChange(logged) || !TYPES.has(logged.type)) throw new WireError(`its change ${i} is damaged`)
    const { type, table, key, value, changes, ops } = logged
    const change: WireChange = { type, table, key: encodeWireKey(key) }
    const keyJson = JSON.stringify(change.key)
    const name = `${table} ${keyJson}`
    // Over the protocol's limits the server answers 400: the commit could never go through.
    if (table.length > LIMITS.tableLength || keyJson.length > LIMITS.keyLength) {
      throw new WireError(`${short(name)}: the key or table name is too long`)
    }
    if (type !== 'delete') {
      if (value === undefined) throw new WireError(`its change ${i} has no value`)
      checkWireValue(value, name)
      change.value = value
    }
    if (changes !== undefined) {
      change.changes = changes
      // A field update (see `UpdateEvent.ops`) goes as a patch of its changed paths, which the
      // server merges into its own value; `''` (the whole value was replaced) cannot be merged.
      if (ops && !('' in changes)) {
        change.patch = Object.keys(changes)
        if (Object.keys(ops).length > 0) change.ops = ops
      }
    }
    return change
  })
  return { rev: row.rev, tx: row.tx, at: row.at, changes }
}

async function setAsideRow(ctx: SyncContext, row: LogRow, reason: string): Promise<void> {
  const { db } = ctx
  await syncTransaction(ctx, [], async () => {
    const aside: AsideRow = { id: ['aside', 'push', row.rev], kind: 'push', rev: row.rev, reason, at: Date.now(), row }
    await syncTable(db).put(aside)
  })
  if (Array.isArray(row.changes)) ctx.pending.add(row.rev, idsOf(row))
  ctx.report(syncError(`Local commit ${row.rev} set aside: ${reason}`, 'not-sendable', row.rev))
  ctx.changed()
}
