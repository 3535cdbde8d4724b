import type { SetAsideItem } from '../sync-port.js'
import { LOG_TABLE, type LoggedChange, type LogRow } from '../log/changelog.js'
import { setOwnPath } from '../util/own-path.js'
import { decodeBatch, saveKeys, writeBatch } from './apply-batch.js'
import {
  entityChange,
  syncError,
  syncTransaction,
  writeChanges,
  type EntityChange,
  type SyncContext,
} from './context.js'
import { idsOf, isChange } from './pending.js'
import { keyId, keysTable, syncTable, type AsideRow, type KeyRow } from './store.js'

/**
 * `feed.sync.retry(item)` and `drop(item)` of set-aside items, run by the leader. Pass it
 * to {@link httpSync} as `setAside` (README, "Set-aside items"); without it the items are
 * still kept, counted and listed (`setAside()`), and wait.
 *
 * @example
 * import { httpSync, setAsideActions } from '@changecast/core/sync'
 * const feed = changecast(db, { sync: httpSync({ url, setAside: setAsideActions }) })
 * for (const item of await feed.sync!.setAside()) await feed.sync!.drop(item)
 */
export const setAsideActions = { run: (...args: Parameters<typeof runCommand>) => runCommand(...args) }

/** What {@link setAsideActions} is (it runs in the leading context). */
export type SetAsideActions = typeof setAsideActions

const missing = (kind: string, rev: number) => syncError(`Nothing is set aside as ${kind} ${rev}.`, 'protocol', rev)

/** Runs a retry or drop of a set-aside item, in the leader. */
async function runCommand(
  ctx: SyncContext,
  name: 'retry' | 'drop',
  kind: SetAsideItem['kind'],
  rev: number,
): Promise<void> {
  const row = (await syncTable(ctx.db).get(['aside', kind, rev])) as AsideRow | undefined
  if (!row) throw missing(kind, rev)
  if (kind === 'apply') {
    if (name === 'retry') await retryBatch(ctx, row)
    else {
      await syncTable(ctx.db).delete(row.id)
      ctx.asideApply.delete(rev)
    }
  } else if (name === 'retry') {
    await syncTable(ctx.db).put({ ...row, retry: true })
  } else {
    await dropRow(ctx, row)
  }
  ctx.changed()
}

/**
 * Forgets a set-aside local commit. Each entity it wrote goes back to the newest state this
 * client knows of it: left as it is when a later local commit wrote it (answered or not),
 * else the server's value held back for it, else its value before the commit (when the
 * changelog kept it).
 */
async function dropRow(ctx: SyncContext, aside: AsideRow): Promise<void> {
  const { db } = ctx
  const row = aside.row
  const changes = row && Array.isArray(row.changes) ? row.changes.filter(isChange) : []
  const except = new Set([aside.rev])
  await syncTransaction(
    ctx,
    changes.map((change) => change.table).filter((table) => ctx.host.isCaptured(table)),
    async (transaction) => {
      await ctx.pending.refresh(db)
      const entries = await keysTable(db).bulkGet(changes.map((change) => keyId(change.table, change.key)))
      // Entities written by later local commits: their local values are newer than anything restored here.
      const later = new Set<string>()
      await db
        .table<LogRow, number>(LOG_TABLE)
        .where(':id')
        .above(aside.rev)
        .each((next) => {
          if (next.source === 'local') for (const id of idsOf(next)) later.add(id)
        })
      const known = new Map<string, KeyRow | undefined>()
      const writes = new Map<string, EntityChange>()
      changes.forEach((change, i) => {
        const { table, key } = change
        const id = keyId(table, key)
        if (later.has(id) || ctx.pending.has(id, except) || writes.has(id) || !ctx.host.isCaptured(table)) return
        const entry = entries[i]
        if (entry?.base) {
          writes.set(id, entityChange(table, key, id, entry.base.value))
          known.set(id, { id, table, key, rev: entry.rev })
        } else if (change.type === 'create') {
          writes.set(id, entityChange(table, key, id, undefined))
        } else {
          const value = before(change)
          if (value !== undefined) writes.set(id, entityChange(table, key, id, value))
        }
      })
      if (writes.size > 0) {
        ctx.host.markRemote(transaction, 'server', `${ctx.clientId}.drop.${aside.rev}`)
        await writeChanges(db, [...writes.values()])
      }
      await saveKeys(ctx, known)
      await syncTable(db).delete(aside.id)
      await syncTable(db).put({ id: ['receipt', aside.rev], rev: aside.rev, status: 'dropped', reason: aside.reason })
    },
  )
  ctx.pending.remove(aside.rev)
}

/** An entity's value before a logged change: kept whole, or as the old values of the changed paths. */
function before({ value, previous, undo }: LoggedChange): unknown {
  if (!undo) return previous
  const copy = structuredClone(value) as Record<string, unknown>
  for (const path in undo) setOwnPath(copy, path, undo[path])
  return copy
}

/** Applies a set-aside batch again (where nothing wrote since), and forgets it. */
async function retryBatch(ctx: SyncContext, row: AsideRow): Promise<void> {
  if (!row.batch)
    throw syncError(`Server batch ${row.rev} was not kept: it cannot be retried.`, 'not-applicable', row.rev)
  const changes = decodeBatch(ctx, row.batch)
  await writeBatch(ctx, row.batch, changes, 'retry')
  await syncTable(ctx.db).delete(row.id)
  ctx.asideApply.delete(row.rev)
  ctx.changed()
}
