import type { IndexableType } from 'dexie'
import { saveKeys, syncedTables, writeBatch } from './apply-batch.js'
import { syncError, syncTransaction, writeChanges, type EntityChange, type SyncContext } from './context.js'
import { decodeChange } from './decode.js'
import { RequestFailure, requestJson } from './http.js'
import { advance } from './pull.js'
import { checkReply } from './principal.js'
import { parseSnapshotReply, ProtocolViolation, type SnapshotReply } from './protocol.js'
import { keyId, keysTable, readState, scopeKey, syncTable, updateState, type KeyRow } from './store.js'

/** Entities per snapshot page. */
export const SNAPSHOT_PAGE = 2500

/**
 * Loads the server's state of this client's scopes (docs/protocol.md, "Snapshots"): pages of
 * one snapshot at one server revision, each applied in one transaction with bulk writes and
 * the rules of a server batch (an entity with an unanswered local write keeps it, and the
 * server's value becomes its base); then the entities the snapshot does not hold are removed
 * from this client (`removed` delete events), the position moves to the snapshot's revision
 * and remembers its scopes. The outbox is untouched. A page that says the snapshot was
 * compacted away (or a new epoch) starts it again. `refetch`: the server asked for it, so
 * `onResync` fires at the end.
 */
export async function bootstrap(ctx: SyncContext, refetch: boolean): Promise<void> {
  const { options } = ctx
  /** One page (`after` undefined: the first, at a revision the server picks); `none`: the server has no snapshots. */
  const fetchPage = async (at?: { rev: number; after: string }): Promise<SnapshotReply | 'none'> => {
    ctx.checkPaused()
    let query = `v=2&clientId=${encodeURIComponent(ctx.clientId)}&limit=${SNAPSHOT_PAGE}${options.scopeQuery}`
    if (at) query += `&rev=${at.rev}&after=${encodeURIComponent(at.after)}`
    try {
      const body = await requestJson(ctx, `${options.base}/snapshot?${query}`)
      return parseSnapshotReply(body)
    } catch (error) {
      if (at || !(error instanceof RequestFailure) || error.status !== 404) throw error
      return 'none'
    }
  }
  ctx.bootstrapping = true
  try {
    restart: for (;;) {
      const seen = new Set<string>()
      // Tables empty now receive the snapshot's entities as adds: no previous values to read.
      const adds = await ctx.exclusive(() => emptyTables(ctx))
      let first: SnapshotReply | undefined
      let loaded = 0
      ctx.progress(0, 0)
      let coming: Promise<SnapshotReply | 'none'> | undefined = fetchPage()
      while (coming) {
        const reply: SnapshotReply | 'none' = await coming
        coming = undefined
        if (reply === 'none') {
          // A server without snapshots: its log is replayed instead (it never compacts).
          await ctx.exclusive(() => withoutSnapshots(ctx, refetch))
          return
        }
        if (await ctx.exclusive(() => checkReply(ctx, reply))) continue restart
        if (reply.mustRefetch) continue restart
        const { rev, total, scopes }: SnapshotReply = (first ??= reply)
        if (reply.rev !== rev) {
          throw new ProtocolViolation(`Snapshot pages of revisions ${rev} and ${reply.rev}`)
        }
        // The user's scopes changed between pages: the pages no longer make one snapshot.
        if (scopeKey(reply.scopes) !== scopeKey(scopes)) continue restart
        // The next page travels while this one is written. It may fail meanwhile: handled
        // here, it still throws where it is awaited.
        if (reply.next !== undefined) {
          coming = fetchPage({ rev, after: reply.next })
          coming.catch(() => undefined)
        }
        await ctx.exclusive(() => applyPage(ctx, rev, reply, seen, adds))
        loaded += reply.rows.length
        ctx.progress(loaded, Math.max(total ?? 0, loaded))
      }
      if (!first) continue
      const { rev, scopes } = first
      await ctx.exclusive(() => sweep(ctx, rev, seen, scopeKey(scopes)))
      await ctx.exclusive(() => advance(ctx, rev))
      break
    }
  } finally {
    ctx.bootstrapping = false
    ctx.progress()
  }
  ctx.changed()
  if (refetch) ctx.host.resync({ reason: 'server-refetch' })
}

/**
 * The server has no snapshots: this client reads its whole log (again, when it asked for
 * that). After a reset it cannot tell which of its entities the server no longer has: those
 * stay until the server's log deletes them.
 */
async function withoutSnapshots(ctx: SyncContext, refetch: boolean): Promise<void> {
  const { db } = ctx
  await db.transaction('rw', [syncTable(db), keysTable(db)], async () => {
    await updateState(db, refetch ? { scopes: '*', serverRev: 0, refetch: false } : { scopes: '*', refetch: false })
    if (refetch) await keysTable(db).clear()
  })
}

/** Applies one page as a server batch at the snapshot's revision; a row that cannot be applied is reported and skipped. */
async function applyPage(
  ctx: SyncContext,
  rev: number,
  reply: SnapshotReply,
  seen: Set<string>,
  adds: ReadonlySet<string>,
): Promise<void> {
  const synced = syncedTables(ctx)
  const changes: EntityChange[] = []
  const problems: string[] = []
  for (const row of reply.rows) {
    try {
      const change = decodeChange(ctx.db, synced, row)
      if (change) changes.push(change)
    } catch (error) {
      problems.push((error as Error).message)
    }
  }
  for (const change of changes) seen.add(change.id)
  if (problems.length > 0) {
    ctx.report(
      syncError(`${problems.length} snapshot entities cannot be stored: ${problems[0]}`, 'not-applicable', rev),
    )
  }
  if (changes.length === 0) return
  const batch = { rev, origin: 'server', tx: `${ctx.clientId}.snapshot.${rev}`, at: Date.now(), changes: [] }
  await writeBatch(ctx, batch, changes, 'snapshot', adds)
}

/** The synced tables that hold no row. */
async function emptyTables(ctx: SyncContext): Promise<Set<string>> {
  const empty = new Set<string>()
  for (const table of syncedTableNames(ctx)) if ((await ctx.db.table(table).count()) === 0) empty.add(table)
  return empty
}

const syncedTableNames = (ctx: SyncContext): string[] => {
  const synced = syncedTables(ctx)
  return ctx.db.tables.map((table) => table.name).filter((name) => synced(name) && !name.startsWith('_changecast'))
}

/**
 * Removes what the snapshot did not hold (unless a local write to it is unanswered: then
 * "absent" becomes its base; or it is known at a newer revision), and records the position.
 */
async function sweep(ctx: SyncContext, rev: number, seen: Set<string>, scopes: string): Promise<void> {
  const { db } = ctx
  const tables = syncedTableNames(ctx)
  await syncTransaction(ctx, tables, async (transaction) => {
    await ctx.pending.refresh(db)
    const state = await readState(db)
    // Entities that left because the scopes changed are marked as removals, not deletes.
    const moved = state.scopes !== undefined && state.scopes !== scopes
    const absent: EntityChange[] = []
    for (const table of tables) {
      const keys = await db.table<unknown, IndexableType>(table).toCollection().primaryKeys()
      for (const key of keys) {
        const id = keyId(table, key)
        if (!seen.has(id)) absent.push({ type: 'delete', table, key, id })
      }
    }
    const found = await keysTable(db).bulkGet(absent.map((change) => change.id))
    const known = new Map<string, KeyRow | undefined>()
    const deletes: EntityChange[] = []
    absent.forEach((change, i) => {
      const entry = found[i]
      // Known newer than the snapshot (at the snapshot's own revision it is not: the snapshot says it is gone).
      if (entry && entry.rev > rev) return
      if (ctx.pending.has(change.id)) {
        known.set(change.id, { id: change.id, table: change.table, key: change.key, rev, base: {} })
      } else {
        deletes.push(change)
        if (entry) known.set(change.id, undefined)
      }
    })
    if (deletes.length > 0) {
      const removed = moved ? new Set(deletes.map((change) => change.id)) : undefined
      ctx.host.markRemote(transaction, 'server', `${ctx.clientId}.snapshot.${rev}.sweep`, { removed })
      await writeChanges(db, deletes)
    }
    await saveKeys(ctx, known)
    await updateState(db, { serverRev: Math.max(state.serverRev, rev), scopes, refetch: false })
  })
}
