import type { IndexableType, Table } from 'dexie'
import { LOG_TABLE, newestRev, type LogRow } from '../log/changelog.js'
import { randomId } from '../util/random-id.js'
import { syncedTables } from './apply-batch.js'
import { syncTransaction, writeChanges, type EntityChange, type SyncContext } from './context.js'
import { requestJson } from './http.js'
import { checkReply } from './principal.js'
import { parsePullReply } from './protocol.js'
import { toSyncError } from './loop.js'
import type { SyncError } from '../errors.js'
import type { SyncStatus } from '../sync-port.js'
import { isChange } from './pending.js'
import { keyId, keysTable, readState, rowsOf, syncTable, type AsideRow, type HeldRow, type StateRow } from './store.js'

/** The synced tables of this database (declared, captured, not Changecast's own). */
const syncedNames = (ctx: SyncContext): string[] => {
  const synced = syncedTables(ctx)
  return ctx.db.tables.map((table) => table.name).filter((name) => synced(name) && !name.startsWith('_changecast'))
}

/**
 * `feed.sync.signOut()`, run by the leader between two sessions, in one transaction: the
 * unanswered local commits (outbox and set-aside) are held for the principal they belong to
 * (or discarded), every row of the synced tables is removed from this device (delete events
 * marked `removed`, kept by count only in the changelog), the changelog's older rows (their
 * values) are emptied, and the sync starts over as a new client: a new client id, no
 * position, no rejections, receipts or known entities.
 */
async function signOut(ctx: SyncContext, discard: boolean): Promise<void> {
  const { db } = ctx
  const tables = syncedNames(ctx)
  await syncTransaction(ctx, tables, async (transaction) => {
    const state = await readState(db)
    const log = db.table<LogRow, number>(LOG_TABLE)
    const aside = (await rowsOf<AsideRow>(db, 'aside')).filter((row) => row.kind === 'push' && row.row)
    const skip = new Set(aside.map((row) => row.rev))
    const outbox = await log
      .where(':id')
      .above(state.pushedUpTo)
      .filter((row) => row.source === 'local' && !skip.has(row.rev))
      .toArray()
    const pending = [...aside.map((row) => row.row!), ...outbox]
    const newest = await newestRev(db)

    const removals: EntityChange[] = []
    for (const table of tables) {
      for (const key of await db.table<unknown, IndexableType>(table).toCollection().primaryKeys()) {
        removals.push({ type: 'delete', table, key, id: keyId(table, key) })
      }
    }
    // What the changelog held of this user: gone, but for the newest row's number.
    if (newest > 0) {
      await log.where(':id').between(1, newest).delete()
      const last = await log.get(newest)
      if (last) await log.put({ ...last, changes: [], unlogged: last.unlogged ?? (last.changes?.length || 1) })
    }
    if (removals.length > 0) {
      const removed = new Set(removals.map((change) => change.id))
      ctx.host.markRemote(transaction, 'server', `${state.clientId}.sign-out`, { removed, unlogged: true })
      await writeChanges(db, removals)
    }

    const sync = syncTable(db)
    await sync.where('id').between(['aside'], ['aside', []]).delete()
    await sync.where('id').between(['receipt'], ['receipt', []]).delete()
    await sync.where('id').between(['rejection'], ['rejection', []]).delete()
    await keysTable(db).clear()
    const principal = state.principal ?? ''
    for (const row of pending) {
      const { rev } = row
      await sync.put(
        discard
          ? { id: ['receipt', rev], rev, status: 'dropped', reason: DISCARDED }
          : { id: ['held', rev], rev, principal, clientId: state.clientId, row },
      )
    }
    const fresh: StateRow = { id: 'state', clientId: randomId(), pushedUpTo: newest, serverRev: 0, epoch: '' }
    await sync.put(fresh)
  })
}

const DISCARDED = 'discarded: its user signed out'

/** `feed.sync.discardPending()`: forgets every held write (receipts say `dropped`). */
async function discardPending(ctx: SyncContext): Promise<void> {
  const { db } = ctx
  await db.transaction('rw', syncTable(db), async () => {
    for (const { id, rev } of await rowsOf<HeldRow>(db, 'held')) {
      await syncTable(db).delete(id)
      await syncTable(db).put({ id: ['receipt', rev], rev, status: 'dropped', reason: DISCARDED })
    }
  })
  ctx.held.clear()
}

/**
 * A principal whose writes were held signed in again (its name came in a reply): its held
 * commits come back as they were when it signed out — their values in the tables again
 * (as server-made writes: they are not new commits), their changelog rows queued to be
 * pushed first, under the client id they were made with — and the principal owns this
 * device's synced data again.
 */
async function rebind(ctx: SyncContext, principal: string): Promise<void> {
  const { db } = ctx
  const held = (await rowsOf<HeldRow>(db, 'held')).filter((row) => row.principal === principal)
  const synced = syncedTables(ctx)
  const values = new Map<string, EntityChange>()
  for (const { row } of held) {
    for (const change of Array.isArray(row.changes) ? row.changes.filter(isChange) : []) {
      const { table, key, value, type } = change
      if (!synced(table)) continue
      const id = keyId(table, key)
      values.delete(id)
      values.set(id, type === 'delete' ? { type, table, key, id } : { type: 'update', table, key, id, value })
    }
  }
  const changes = [...values.values()]
  await syncTransaction(
    ctx,
    changes.map((change) => change.table),
    async (transaction) => {
      const sync = syncTable(db)
      const state = await readState(db)
      if (changes.length > 0) {
        ctx.host.markRemote(transaction, 'server', `${state.clientId}.rebind`)
        await writeChanges(db, changes)
      }
      const at = Date.now()
      for (const { id, rev, row } of held) {
        await sync.delete(id)
        const aside: AsideRow = { id: ['aside', 'push', rev], kind: 'push', rev, reason: REBOUND, at, row, retry: true }
        await sync.put(aside)
      }
      // Every held commit of one principal was made under one client id (see `signOut`).
      const clientId = held.at(-1)?.clientId ?? state.clientId
      await (sync as unknown as Table<StateRow, string>).update('state', { clientId, principal })
    },
  )
  ctx.held.delete(principal)
}

const REBOUND = 'held at sign-out; sent again'

/**
 * Before the first push after a sign-out that held writes, learns whose credentials these
 * are: a push under this client id would bind it to its principal on the server, and held
 * writes go back under the client id they were made with. One pull page, nothing applied.
 */
async function probe(ctx: SyncContext): Promise<void> {
  if (ctx.held.size === 0 || ctx.probed || (await readState(ctx.db)).principal !== undefined) return
  ctx.checkPaused()
  const { base } = ctx.options
  const reply = parsePullReply(
    await requestJson(ctx, `${base}/pull?v=2&since=0&limit=1&clientId=${encodeURIComponent(ctx.clientId)}`),
  )
  await ctx.exclusive(() => checkReply(ctx, reply))
}

/**
 * Signing out and switching users on one database (`feed.sync.signOut()`,
 * `discardPending()`): pass it to {@link httpSync} as `users`. Apps that give each user a
 * database of their own do not need it (see the README, "Auth").
 *
 * @example
 * import { httpSync, userSwitching } from '@changecast/core/sync'
 * const feed = changecast(db, { sync: httpSync({ url, headers, users: userSwitching }) })
 * await feed.sync!.signOut()
 */
export const userSwitching = { discardPending, probe, between }

/**
 * Runs between two sessions of the leader (no request in flight): brings back the held
 * writes of `rebound`, then the sign-outs asked for. Their replies wait in `answered` until
 * the next session has counted its status. Returns the headers the leader waits to change:
 * those of the signed-out user, while the app still gives them.
 */
async function between(
  ctx: SyncContext,
  rebound: string | undefined,
  tasks: Array<{ discard: boolean; reply: (error?: SyncError) => void }>,
  answered: Array<() => void>,
  setStatus: (change: Partial<SyncStatus>) => void,
): Promise<string | undefined> {
  if (rebound !== undefined) await rebind(ctx, rebound)
  let waitFor: string | undefined
  for (const { discard, reply } of tasks) {
    try {
      await signOut(ctx, discard)
    } catch (error) {
      reply(toSyncError(error))
      continue
    }
    answered.push(reply)
    const now = await ctx.headers().then(JSON.stringify, () => '')
    waitFor = now === ctx.accepted ? now : undefined
    if (waitFor !== undefined) setStatus({ state: 'signed-out' })
  }
  return waitFor
}

/** What {@link userSwitching} is (its parts run in the leading context). */
export type UserSwitching = typeof userSwitching
