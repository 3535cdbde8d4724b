import type { Dexie } from 'dexie'
import { LOG_TABLE, type LogRow } from '../log/changelog.js'
import type { SetAsideItem, SyncReceipt, SyncRejection, SyncStatus } from '../sync-port.js'
import { summary } from './apply-batch.js'
import { syncError } from './context.js'
import { isChange, type PendingKeys } from './pending.js'
import { readState, rowsOf, syncTable, type AsideRow, type ReceiptRow, type RejectionRow } from './store.js'

/**
 * What {@link countInbox} read of a changelog before: up to which rev, and the local commits
 * above the push position among them. Committed rows never change and none appear below a
 * rev read, so each row is read once — not once per count (a snapshot's or a busy pull's
 * remote rows would otherwise be read again on every count until the next push).
 */
interface OutboxScan {
  log: string
  pushedUpTo: number
  scanned: number
  locals: number[]
}

const scans = new WeakMap<Dexie, OutboxScan>()

/** The status figures kept in the database: outbox, set-aside items, rejections, positions. */
export async function countInbox(
  db: Dexie,
  pending?: Pick<PendingKeys, 'isRemote'>,
): Promise<Pick<SyncStatus, 'outbox' | 'setAside' | 'rejections' | 'lastSyncedRev' | 'serverRev'>> {
  return db.transaction('r', [syncTable(db), db.table(LOG_TABLE)], async () => {
    const { pushedUpTo, serverRev } = await readState(db)
    const aside = await rowsOf<AsideRow>(db, 'aside')
    const skip = new Set(aside.filter((row) => row.kind === 'push').map((row) => row.rev))
    const log = db.table<LogRow, number>(LOG_TABLE)
    // A log created again (the database deleted), or a push position that went back: read again.
    const identity = String(((await log.get(0)) as { log?: unknown } | undefined)?.log)
    let scan = scans.get(db)
    if (scan?.log !== identity || scan.pushedUpTo > pushedUpTo)
      scan = { log: identity, pushedUpTo, scanned: 0, locals: [] }
    const from = Math.max(scan.scanned, pushedUpTo)
    const locals = scan.locals.filter((rev) => rev > pushedUpTo)
    // Rows known to hold server changes are not read.
    const revs = await log.where(':id').above(from).primaryKeys()
    const unknown = pending ? revs.filter((rev) => !pending.isRemote(rev)) : revs
    for (const row of unknown.length > 0 ? await log.bulkGet(unknown) : []) {
      if (row?.source === 'local') locals.push(row.rev)
    }
    const scanned = revs.at(-1) ?? from
    scans.set(db, { log: identity, pushedUpTo, scanned, locals })
    const outbox = locals.filter((rev) => !skip.has(rev)).length
    const rejections = await syncTable(db).where('id').between(['rejection'], ['rejection', []]).count()
    return { outbox, setAside: aside.length, rejections, lastSyncedRev: pushedUpTo, serverRev }
  })
}

export async function listRejections(db: Dexie): Promise<SyncRejection[]> {
  // Rows kept before rejections carried a code and the refused changes have neither.
  return (await rowsOf<RejectionRow>(db, 'rejection')).map(({ id: _id, ...rejection }) => ({
    ...rejection,
    code: rejection.code ?? 'rejected',
    changes: rejection.changes ?? [],
  }))
}

export async function listSetAside(db: Dexie): Promise<SetAsideItem[]> {
  return (await rowsOf<AsideRow>(db, 'aside'))
    .map(({ kind, rev, reason, at, row, batch, changes }) => ({
      kind,
      rev,
      reason,
      at,
      changes: row
        ? (Array.isArray(row.changes) ? row.changes.filter(isChange) : []).map(({ type, table, key }) => ({
            type,
            table,
            key,
          }))
        : (changes ?? (batch ? summary(batch) : [])).map(({ type, table, key }) => ({ type, table, key })),
    }))
    .sort((a, b) => a.at - b.at)
}

/** How the server answered local commit `rev`, or undefined while it has not (or it is set aside). */
export async function receiptOf(db: Dexie, rev: number): Promise<SyncReceipt | undefined> {
  return db.transaction('r', [syncTable(db), db.table(LOG_TABLE)], async () => {
    const receipt = (await syncTable(db).get(['receipt', rev])) as ReceiptRow | undefined
    if (receipt)
      return { rev, status: receipt.status, ...(receipt.reason === undefined ? {} : { reason: receipt.reason }) }
    const row = await db.table<LogRow, number>(LOG_TABLE).get(rev)
    if (row && row.source !== 'local') {
      throw syncError(`Rev ${rev} is not a local commit.`, 'protocol', rev)
    }
    // Set aside, or held for a user who signed out: not answered yet.
    if (
      (
        await syncTable(db).bulkGet([
          ['aside', 'push', rev],
          ['held', rev],
        ])
      ).some(Boolean)
    )
      return undefined
    const { pushedUpTo } = await readState(db)
    return rev <= pushedUpTo ? { rev, status: 'acked' } : undefined
  })
}

/** The newest local commit's rev (0 when there is none). */
export async function newestLocalRev(db: Dexie): Promise<number> {
  const row = await db
    .table<LogRow, number>(LOG_TABLE)
    .orderBy(':id')
    .reverse()
    .filter((entry) => entry.source === 'local')
    .first()
  return row?.rev ?? 0
}
