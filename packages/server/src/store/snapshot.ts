import type { Queryable } from '../db/port.js'
import type { Names } from '../names.js'

/** Where a snapshot page ends: the next page starts after this entity (of this scope). */
export type SnapshotCursor = [scope: string | null, table: string, key: string]

/** One page of a snapshot: the entities' newest changes (creates and updates, as JSON text). */
export interface SnapshotPage {
  rows: string[]
  /** Where the next page starts, or undefined after the last page. */
  next?: SnapshotCursor
}

/**
 * One page of the state at revision `rev` of the entities in `scopes` (every entity when
 * undefined): for each entity, its newest change at or below `rev`, when that is not a
 * delete. Entities come in (scope, table, key) order; the reads are index range scans.
 * Consistent across pages as long as compaction keeps every newest row at or above its
 * horizon, which it does (see `compact`).
 */
export async function readSnapshot(
  db: Queryable,
  t: Names,
  { rev, scopes, after, limit }: { rev: number; scopes?: readonly string[]; after?: SnapshotCursor; limit: number },
): Promise<SnapshotPage> {
  type Row = { scope: string; tbl: string; key: string; type: string; change: string }
  const rows: string[] = []
  let bytes = 0
  /** Takes the rows (newest changes) in order until the page is full; the cursor after the last one taken. */
  const take = (found: Row[], scope: string | null): SnapshotCursor | undefined => {
    let last: Row | undefined
    for (const row of found) {
      if (row.type !== 'delete') {
        // Full: the next page starts at this row (after the one before it, or at its scope's start).
        if (rows.length > 0 && bytes + row.change.length > SNAPSHOT_PAGE_BYTES)
          return last ? [scope, last.tbl, last.key] : [scope, '', '']
        rows.push(row.change)
        bytes += row.change.length + 1
      }
      last = row
    }
    return undefined
  }
  if (!scopes) {
    const found = await db.query<Row>(
      `select distinct on (tbl, key) scope, tbl, key, type, change from ${t.changes}
       where rev <= $1 and (tbl, key) > ($2, $3) order by tbl, key, rev desc, seq desc limit $4`,
      [rev, after?.[1] ?? '', after?.[2] ?? '', limit],
    )
    const full = take(found, null)
    if (full) return { rows, next: full }
    const last = found.at(-1)
    return { rows, next: found.length === limit && last ? [null, last.tbl, last.key] : undefined }
  }
  const ordered = [...scopes].sort()
  let index = after?.[0] == null ? 0 : ordered.indexOf(after[0])
  if (index < 0) index = ordered.findIndex((scope) => scope > after![0]!)
  let from: [string, string] = after?.[0] == null || ordered[index] !== after[0] ? ['', ''] : [after[1], after[2]]
  let left = limit
  for (; index >= 0 && index < ordered.length; index++, from = ['', '']) {
    const scope = ordered[index]!
    const found = await db.query<Row>(
      `select distinct on (tbl, key) scope, tbl, key, type, change from ${t.changes}
       where scope = $1 and rev <= $2 and (tbl, key) > ($3, $4) order by tbl, key, rev desc, seq desc limit $5`,
      [scope, rev, from[0], from[1], left],
    )
    const full = take(found, scope)
    if (full) return { rows, next: full }
    left -= found.length
    const last = found.at(-1)
    if (left === 0 && last) return { rows, next: [scope, last.tbl, last.key] }
  }
  return { rows }
}

/** About how much JSON a snapshot page carries at most (one larger row still makes a page). */
export const SNAPSHOT_PAGE_BYTES = 8 * 2 ** 20

/**
 * How many entities a snapshot at `rev` of `scopes` holds: those whose last change is at or
 * below `rev` and left a value (from the entities table), plus, for those changed since, what
 * their newest change at or below `rev` says — so the cost follows the entities, and only
 * the recently changed ones touch the log.
 */
export async function countSnapshot(db: Queryable, t: Names, rev: number, scopes?: readonly string[]): Promise<number> {
  const inScope = (alias: string) => (scopes ? ` and ${alias}.scope = any($2::text[])` : '')
  // With scopes, an entity counts once per readable scope whose newest row of it is not a
  // delete (a move leaves a removal behind, so that is at most one).
  const newest = scopes
    ? `select distinct on (c.scope) c.type from ${t.changes} c
       where c.tbl = e.tbl and c.key = e.key and c.rev <= $1${inScope('c')} order by c.scope, c.rev desc, c.seq desc`
    : `select c.type from ${t.changes} c
       where c.tbl = e.tbl and c.key = e.key and c.rev <= $1 order by c.rev desc, c.seq desc limit 1`
  const [row] = await db.query<{ count: string | number }>(
    `select (select count(*) from ${t.entities} e where e.rev <= $1 and e.value is not null${inScope('e')})
          + (select count(*) from ${t.entities} e cross join lateral (${newest}) n
             where e.rev > $1 and n.type <> 'delete') as count`,
    scopes ? [rev, scopes] : [rev],
  )
  return Number(row!.count)
}
