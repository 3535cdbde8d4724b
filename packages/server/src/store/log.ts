import type { Queryable } from '../db/port.js'
import type { Names } from '../names.js'
import { entityId, type StoredBatch } from './model.js'

/** What {@link readAfter} read: batches in order, and whether it stopped short of `upTo`. */
export interface ReadBatches {
  batches: StoredBatch[]
  /** True when it stopped at `limit` or `maxRows`: there may be more up to `upTo`. */
  more: boolean
}

/** Change rows one query of {@link readAfter} reads. */
export const MAX_ROWS = 250

/** Options of {@link readAfter}. */
export interface ReadOptions {
  /** Newest revision to read. @default every one */
  upTo?: number
  /** Only changes in these scopes (batches with none are left out). @default every change */
  scopes?: readonly string[]
  /** Rows per query; a read stops at the first batch boundary past it. @default MAX_ROWS */
  maxRows?: number
  /** Awaited between two queries of one read (a large batch takes several). */
  between?: () => Promise<void>
}

/**
 * Batches with `after < rev ≤ upTo` that hold changes (in `scopes`, every change when
 * undefined), in order: at most `limit` batches, and no more than the whole batches that
 * `maxRows` rows reach (at least one). Rows are read `maxRows` at a time, in the order of the
 * log, so one query costs about the same however large the batches, and other work runs
 * between two (`between`).
 */
export async function readAfter(
  db: Queryable,
  t: Names,
  after: number,
  limit: number,
  { upTo = Number.MAX_SAFE_INTEGER, scopes, maxRows = MAX_ROWS, between }: ReadOptions = {},
): Promise<ReadBatches> {
  type Row = {
    rev: string | number
    seq: number
    scope: string
    tbl: string
    key: string
    change: string
    removed: boolean
  }
  const rows: Row[] = []
  let more = false
  /** The revisions read, in order, and the index in `rows` where each begins. */
  const revs: number[] = []
  const starts: number[] = []
  /** Keeps the first `count` batches read. */
  const keep = (count: number) => {
    rows.length = starts[count]!
    revs.length = starts.length = count
    more = true
  }
  let from: [number, number] = [after, 2 ** 31 - 1]
  let queries = 0
  for (;;) {
    if (queries++ > 0) await between?.()
    const part = await db.query<Row>(
      `select rev, seq, scope, tbl, key, change, removed from ${t.changes}
       where (rev, seq) > ($1, $2) and rev >= $1 and rev <= $3${scopes ? ' and scope = any($5::text[])' : ''}
       order by rev, seq limit $4`,
      scopes ? [from[0], from[1], upTo, maxRows, scopes] : [from[0], from[1], upTo, maxRows],
    )
    for (const row of part) {
      const rev = Number(row.rev)
      if (revs.at(-1) !== rev) {
        revs.push(rev)
        starts.push(rows.length)
      }
      rows.push(row)
    }
    if (part.length < maxRows) {
      // Every row up to upTo read: at most `limit` batches of them.
      if (revs.length > limit) keep(limit)
      break
    }
    const last = part.at(-1)!
    from = [Number(last.rev), last.seq]
    // The last batch may go on in the next rows; the others are whole, and enough.
    const whole = revs.length - 1
    if (whole > 0) {
      keep(Math.min(whole, limit))
      break
    }
  }
  if (revs.length === 0) return { batches: [], more }
  const heads = await db.query<{ rev: string | number; origin: string; tx: string; at: number }>(
    `select rev, origin, tx, at from ${t.batches} where rev = any($1::bigint[]) order by rev`,
    [revs],
  )
  const batches: StoredBatch[] = heads.map((head) => ({
    rev: Number(head.rev),
    origin: head.origin,
    tx: head.tx,
    at: Number(head.at),
    changes: [],
  }))
  let index = 0
  for (const row of rows) {
    while (batches[index]!.rev !== Number(row.rev)) index++
    batches[index]!.changes.push({
      scope: row.scope,
      entity: entityId(row.tbl, row.key),
      removed: row.removed === true,
      json: row.change,
    })
  }
  return { batches, more }
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
