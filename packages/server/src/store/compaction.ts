import type { Database, Queryable } from '../db/port.js'
import type { Names } from '../names.js'
import { readMeta } from './model.js'

/**
 * Compaction: removes the log rows superseded at revision `horizon` (an entity's older
 * rows in a scope, when a newer one at or below the horizon exists there), the deletes
 * and removals at or below it, and the entities deleted at or below it; then records the
 * horizon. A client whose position is below it must fetch a snapshot again. Each entity's
 * newest row in a scope stays, so a snapshot at any revision ≥ horizon stays whole.
 * Returns how many rows went.
 */
export async function compact(db: Database, t: Names, horizon: number): Promise<number> {
  return db.transaction(async (tx) => {
    const meta = await readMeta(tx, t, true)
    const upTo = Math.min(horizon, meta.head)
    if (upTo <= meta.horizon) return 0
    const superseded = await tx.query<{ n: number }>(
      `with gone as (
         delete from ${t.changes} c using ${t.changes} d
         where c.rev <= $1 and d.rev <= $1 and d.scope = c.scope and d.tbl = c.tbl and d.key = c.key
           and (d.rev, d.seq) > (c.rev, c.seq)
         returning 1
       ) select count(*)::int as n from gone`,
      [upTo],
    )
    const tombstones = await tx.query<{ n: number }>(
      `with gone as (delete from ${t.changes} where rev <= $1 and type = 'delete' returning 1)
       select count(*)::int as n from gone`,
      [upTo],
    )
    await tx.query(`delete from ${t.entities} where value is null and rev <= $1`, [upTo])
    await tx.query(`update ${t.meta} set horizon = $1 where id = 1`, [upTo])
    return superseded[0]!.n + tombstones[0]!.n
  })
}

/** The newest revision committed before `age` milliseconds ago (0 when none). */
export async function revisionBefore(db: Queryable, t: Names, age: number): Promise<number> {
  const [row] = await db.query<{ rev: string | number | null }>(
    `select max(rev) as rev from ${t.batches} where committed_at < now() - make_interval(secs => $1)`,
    [age / 1000],
  )
  return Number(row?.rev ?? 0)
}
