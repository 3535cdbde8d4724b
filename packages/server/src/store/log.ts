import type { Queryable } from '../db/port.js'
import type { Names } from '../names.js'
import { entityId, type StoredBatch } from './model.js'

/**
 * Batches with `after < rev ≤ upTo`, in order, at most `limit`, each with its changes in
 * `scopes` (every change when undefined). With scopes, batches that have none of them are
 * left out (read through the index on scope and revision).
 */
export async function readAfter(
  db: Queryable,
  t: Names,
  after: number,
  limit: number,
  { upTo = Number.MAX_SAFE_INTEGER, scopes }: { upTo?: number; scopes?: readonly string[] } = {},
): Promise<StoredBatch[]> {
  const revs = scopes
    ? await db.query<{ rev: string | number }>(
        `select distinct rev from ${t.changes} where scope = any($1::text[]) and rev > $2 and rev <= $3 order by rev limit $4`,
        [scopes, after, upTo, limit],
      )
    : await db.query<{ rev: string | number }>(
        `select rev from ${t.batches} where rev > $1 and rev <= $2 order by rev limit $3`,
        [after, upTo, limit],
      )
  if (revs.length === 0) return []
  const rows = await db.query<{
    rev: string | number
    origin: string
    tx: string
    at: number
    scope: string | null
    tbl: string | null
    key: string | null
    change: string | null
    removed: boolean | null
  }>(
    `select b.rev, b.origin, b.tx, b.at, c.scope, c.tbl, c.key, c.change, c.removed
     from ${t.batches} b left join ${t.changes} c on c.rev = b.rev${scopes ? ' and c.scope = any($2::text[])' : ''}
     where b.rev = any($1::bigint[]) order by b.rev, c.seq`,
    scopes ? [revs.map((row) => row.rev), scopes] : [revs.map((row) => row.rev)],
  )
  const batches: StoredBatch[] = []
  for (const row of rows) {
    const rev = Number(row.rev)
    let batch = batches.at(-1)
    if (batch?.rev !== rev) {
      batch = { rev, origin: row.origin, tx: row.tx, at: Number(row.at), changes: [] }
      batches.push(batch)
    }
    if (row.change !== null) {
      batch.changes.push({
        scope: row.scope!,
        entity: entityId(row.tbl!, row.key!),
        removed: row.removed === true,
        json: row.change,
      })
    }
  }
  return batches
}

/**
 * A stored batch as the protocol's JSON, with the changes a reader of `scopes` may see (all
 * when undefined), or undefined when it may see none. An entity moved between two scopes it
 * reads is not reported as removed.
 */
export function batchJson(batch: StoredBatch, scopes?: ReadonlySet<string>): string | undefined {
  const visible = scopes ? batch.changes.filter((change) => scopes.has(change.scope)) : batch.changes
  if (scopes && visible.length === 0) return undefined
  const kept = visible.filter(
    (change, i) => !change.removed || !visible.some((later, j) => j > i && later.entity === change.entity),
  )
  return `{"rev":${batch.rev},"tx":${JSON.stringify(batch.tx)},"origin":${JSON.stringify(batch.origin)},"at":${batch.at},"changes":[${kept.map((change) => change.json).join(',')}]}`
}

/** The JSON size of a stored batch's changes (an upper bound of what a reader gets). */
export const batchSize = (batch: StoredBatch): number =>
  batch.changes.reduce((size, change) => size + change.json.length + 1, 100)
