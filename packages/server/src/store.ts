import {
  decodeWireKey,
  wireKeyText,
  type PushBatch,
  type PushReply,
  type WireChange,
  type WireCurrent,
} from '@changecast/core/protocol'
import type { Database, Queryable } from './db/port.js'
import type { Names } from './names.js'
import type { Refusal } from './rules.js'

/** A stored batch, as read back: its changes (as JSON text) visible to the reader. */
export interface StoredBatch {
  rev: number
  origin: string
  tx: string
  at: number
  changes: StoredChange[]
}

/** One stored change: its scope, the entity it names, and its JSON text as the protocol carries it. */
export interface StoredChange {
  scope: string
  entity: string
  removed: boolean
  json: string
}

/** The scope of entities when the server has no `scopeOf`. */
export const DEFAULT_SCOPE = 'default'

/**
 * Names the one scope an entity belongs to (e.g. `project:42`), from its value. Called for
 * every created or updated entity; a deleted one stays in the scope it was in.
 */
export type ScopeOf = (entity: { table: string; key: unknown; value: unknown }) => string

/** The scopes a request may read and write: `undefined` is every scope. */
export interface Access {
  read?: ReadonlySet<string>
  write?: ReadonlySet<string>
}

/** A pushed batch with the server's decision on it (made before the transaction). */
export interface Decided {
  batch: PushBatch
  /** Why it is refused (validation, permission), or undefined to accept it. */
  refusal?: Refusal | undefined
}

/** A repeated `(clientId, rev)` with another transaction: the whole request is refused (409). */
export class ConflictError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ConflictError'
  }
}

const entityId = (table: string, keyText: string) => `${table}\u0000${keyText}`
const keyTextOf = (change: Pick<WireChange, 'key'>) => wireKeyText(change.key)

/** The log's epoch, newest revision and compaction horizon. `lock`: hold the row (every write does) until the transaction ends. */
export async function readMeta(
  db: Queryable,
  t: Names,
  lock = false,
): Promise<{ epoch: string; head: number; horizon: number }> {
  const [row] = await db.query<{ epoch: string; head: string | number; horizon: string | number }>(
    `select epoch, head, horizon from ${t.meta} where id = 1${lock ? ' for update' : ''}`,
  )
  return { epoch: row!.epoch, head: Number(row!.head), horizon: Number(row!.horizon) }
}

/** One push request, decided on and waiting to be stored. */
export interface PendingPush {
  clientId: string
  decided: readonly Decided[]
  /** The scopes its principal may read and write. */
  access: Access
  /** A confirming push (docs/protocol.md): nothing is stored; what is not known is rejected `unknown`. */
  confirm?: boolean
}

/** What became of a push: its reply, or a conflict that refuses it (409). */
export type PushOutcome = { reply: PushReply; appended: number } | ConflictError

/** How the store places changes in scopes. */
export interface Scoping {
  scopeOf?: ScopeOf
}

/**
 * Records push requests in one transaction (a group commit: requests that arrive while
 * another transaction runs are stored together), each per the protocol: batches in order;
 * one already accepted under the same `(clientId, rev)` and `tx` is acked again with its
 * revision (a different `tx` refuses that request, and only it); a refused one changes
 * nothing and gets the current state of what it touched, as of that moment, as far as its
 * principal may read it; an accepted one is appended with the next revision and becomes the
 * state of its entities. A batch that writes a scope its principal may not write (or moves an
 * entity out of one) is refused. The meta row is locked first, so revisions commit in order.
 */
export async function push(
  db: Database,
  t: Names,
  requests: readonly PendingPush[],
  scoping: Scoping = {},
): Promise<PushOutcome[]> {
  return db.transaction(async (tx) => {
    const meta = await readMeta(tx, t, true)
    let head = meta.head
    const pairs = requests.flatMap(({ clientId, decided }) =>
      decided.map(({ batch }) => [clientId, batch.rev] as const),
    )
    // Two lists rather than pairs: planned much faster (PGlite plans every statement); the
    // few extra rows are left out below.
    const done = await tx.query<{ origin: string; client_rev: string | number; rev: string | number; tx: string }>(
      `select origin, client_rev, rev, tx from ${t.batches} where origin = any($1::text[]) and client_rev = any($2::bigint[])`,
      [[...new Set(pairs.map(([clientId]) => clientId))], [...new Set(pairs.map(([, rev]) => rev))]],
    )
    // `${clientId}\0${rev}` → what it was accepted as (earlier, or earlier in this group).
    const accepted = new Map(
      done.map((row) => [`${row.origin}\u0000${Number(row.client_rev)}`, { rev: Number(row.rev), tx: row.tx }]),
    )
    const asked = new Set(pairs.map(([clientId, rev]) => `${clientId}\u0000${rev}`))
    for (const id of accepted.keys()) if (!asked.has(id)) accepted.delete(id)
    const state = await readEntities(
      tx,
      t,
      requests.flatMap(({ decided }) => decided.flatMap(({ batch }) => batch.changes)),
    )
    const log = new Log()
    const outcomes = requests.map(({ clientId, decided, access, confirm }): PushOutcome => {
      const id = (rev: number) => `${clientId}\u0000${rev}`
      for (const { batch } of decided) {
        const before = accepted.get(id(batch.rev))
        if (before && before.tx !== batch.tx) {
          return new ConflictError(`rev ${batch.rev} of client ${clientId} was already used by another transaction`)
        }
      }
      const reply: PushReply = { epoch: meta.epoch, acked: [], rejected: [] }
      let count = 0
      for (const { batch, refusal } of decided) {
        const before = accepted.get(id(batch.rev))
        if (before) {
          reply.acked.push({ rev: batch.rev, serverRev: before.rev })
          continue
        }
        const planned = confirm ? UNKNOWN : (refusal ?? plan(state, batch.changes, scoping, access))
        if (!Array.isArray(planned)) {
          reply.rejected.push({
            rev: batch.rev,
            code: planned.code,
            reason: planned.reason,
            serverRev: head,
            current: currentOf(batch.changes, state, access),
          })
          continue
        }
        log.append({ rev: ++head, origin: clientId, clientRev: batch.rev, tx: batch.tx, at: batch.at }, planned, state)
        accepted.set(id(batch.rev), { rev: head, tx: batch.tx })
        reply.acked.push({ rev: batch.rev, serverRev: head })
        count++
      }
      return { reply, appended: count }
    })
    if (log.batches.length > 0) await log.store(tx, t, state, head)
    return outcomes
  })
}

/**
 * Appends a batch written by the backend itself (no client), in `tx`: the caller's own
 * transaction, or one of the server's. Returns its revision.
 */
export async function appendBackendBatch(
  tx: Queryable,
  t: Names,
  changes: WireChange[],
  origin: string,
  scoping: Scoping = {},
): Promise<number> {
  const meta = await readMeta(tx, t, true)
  const rev = meta.head + 1
  const state = await readEntities(tx, t, changes)
  const planned = plan(state, changes, scoping, {})
  // The backend may write every scope: only a scopeOf that fails refuses its batch.
  if (!Array.isArray(planned)) throw new TypeError(planned.reason)
  const log = new Log()
  log.append({ rev, origin, clientRev: null, tx: `${origin}.${rev}`, at: Date.now() }, planned, state)
  await log.store(tx, t, state, rev)
  return rev
}

/** The answer to a confirming push for a batch this server has no record of. */
const UNKNOWN: Refusal = { code: 'unknown', reason: 'this server has no record of this commit' }

/** Entities by table and key: their value (JSON text, null: none), scope and, once written here, their revision. */
type State = Map<string, Entity>
interface Entity {
  table: string
  key: string
  value: string | null
  scope: string
  rev?: number
}

/** A change about to be stored, in its scope. */
interface Planned {
  table: string
  key: string
  type: WireChange['type']
  scope: string
  /** Null for a delete. */
  value: string | null
  removed: boolean
  json: string
}

/**
 * The rows a batch's changes become, in order (an entity moved to another scope: a removal
 * in the old one, then its value in the new one), or why the batch is refused. Reads the
 * state as earlier batches left it; changes nothing.
 */
function plan(state: State, changes: readonly WireChange[], { scopeOf }: Scoping, access: Access): Planned[] | Refusal {
  const overlay = new Map<string, Entity>()
  const rows: Planned[] = []
  for (const change of changes) {
    const key = keyTextOf(change)
    const id = entityId(change.table, key)
    const before = overlay.get(id) ?? state.get(id)
    const exists = before !== undefined && before.value !== null
    let scope: string
    if (change.type === 'delete') scope = before?.scope ?? DEFAULT_SCOPE
    else if (!scopeOf) scope = DEFAULT_SCOPE
    else {
      try {
        scope = scopeOf({ table: change.table, key: decodeWireKey(change.key), value: change.value })
      } catch (error) {
        return { code: 'invalid', reason: `${change.table} ${key}: ${(error as Error)?.message ?? String(error)}` }
      }
      // At most 256 characters: scopes are indexed with the table and key (docs/protocol.md, "Limits").
      if (typeof scope !== 'string' || scope === '' || scope.length > 256) {
        return { code: 'invalid', reason: `${change.table} ${key}: the scope must have 1–256 characters` }
      }
    }
    // The same words whether the entity is elsewhere or the target scope is not writable:
    // a refusal does not tell the writer where an entity it may not read is.
    const forbidden: Refusal = { code: 'forbidden', reason: `not allowed to ${change.type} ${change.table} ${key}` }
    if (access.write && !access.write.has(scope)) return forbidden
    if (exists && access.write && !access.write.has(before.scope)) return forbidden
    if (exists && change.type !== 'delete' && before.scope !== scope) {
      const removal = { type: 'delete' as const, table: change.table, key: change.key, removed: true }
      rows.push({ ...removal, key, scope: before.scope, value: null, json: JSON.stringify(removal) })
    }
    const value = change.type === 'delete' ? null : JSON.stringify(change.value)
    // A delete of something that does not exist changes nothing anyone can see.
    if (change.type !== 'delete' || exists || !scopeOf) {
      rows.push({
        table: change.table,
        key,
        type: change.type,
        scope,
        value,
        removed: false,
        json: JSON.stringify(change),
      })
    }
    overlay.set(id, { table: change.table, key, value, scope })
  }
  return rows
}

/** Batches appended in one transaction, with their change rows. */
class Log {
  readonly batches: Array<{ rev: number; origin: string; clientRev: number | null; tx: string; at: number }> = []
  readonly rows: Array<Planned & { rev: number; seq: number }> = []

  /** Appends a batch, and makes its changes the state of their entities. */
  append(batch: Log['batches'][number], planned: Planned[], state: State): void {
    this.batches.push(batch)
    planned.forEach((row, seq) => {
      this.rows.push({ ...row, rev: batch.rev, seq })
      if (!row.removed) {
        const id = entityId(row.table, row.key)
        state.set(id, { table: row.table, key: row.key, value: row.value, scope: row.scope, rev: batch.rev })
      }
    })
  }

  /**
   * Writes the batches, their change rows, the entities they changed (the state's entries
   * with a rev) and the new head, in one statement (one round trip).
   */
  async store(tx: Queryable, t: Names, state: State, head: number): Promise<void> {
    const { batches, rows } = this
    const written = [...state.values()].filter((entry) => entry.rev !== undefined)
    await tx.query(
      `with appended as (
         insert into ${t.batches} (rev, origin, client_rev, tx, at)
         select * from unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::float8[])
       ), changed as (
         insert into ${t.changes} (rev, seq, scope, tbl, key, type, change, removed)
         select * from unnest($6::bigint[], $7::int[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bool[])
       ), entities as (
         insert into ${t.entities} (tbl, key, value, rev, scope)
         select * from unnest($14::text[], $15::text[], $16::text[], $17::bigint[], $18::text[])
         on conflict (tbl, key) do update set value = excluded.value, rev = excluded.rev, scope = excluded.scope
       )
       update ${t.meta} set head = $19 where id = 1`,
      [
        batches.map((b) => b.rev),
        batches.map((b) => b.origin),
        batches.map((b) => b.clientRev),
        batches.map((b) => b.tx),
        batches.map((b) => b.at),
        rows.map((r) => r.rev),
        rows.map((r) => r.seq),
        rows.map((r) => r.scope),
        rows.map((r) => r.table),
        rows.map((r) => r.key),
        rows.map((r) => r.type),
        rows.map((r) => r.json),
        rows.map((r) => r.removed),
        written.map((e) => e.table),
        written.map((e) => e.key),
        written.map((e) => e.value),
        written.map((e) => e.rev),
        written.map((e) => e.scope),
        head,
      ],
    )
  }
}

async function readEntities(tx: Queryable, t: Names, changes: readonly WireChange[]): Promise<State> {
  const wanted = new Set<string>()
  const tables: string[] = []
  const keys: string[] = []
  for (const change of changes) {
    const key = keyTextOf(change)
    const id = entityId(change.table, key)
    if (wanted.has(id)) continue
    wanted.add(id)
    tables.push(change.table)
    keys.push(key)
  }
  if (tables.length === 0) return new Map()
  const rows = await tx.query<{ tbl: string; key: string; value: string | null; scope: string }>(
    `select tbl, key, value, scope from ${t.entities} where tbl = any($1::text[]) and key = any($2::text[])`,
    [[...new Set(tables)], keys],
  )
  const found: State = new Map()
  for (const row of rows) {
    const id = entityId(row.tbl, row.key)
    if (wanted.has(id)) found.set(id, { table: row.tbl, key: row.key, value: row.value, scope: row.scope })
  }
  return found
}

/**
 * Every entity a batch touched, with its current state (no value: it does not exist, or
 * the principal may not read its scope).
 */
function currentOf(changes: readonly WireChange[], state: State, access: Access): WireCurrent[] {
  const seen = new Set<string>()
  const current: WireCurrent[] = []
  for (const change of changes) {
    const id = entityId(change.table, keyTextOf(change))
    if (seen.has(id)) continue
    seen.add(id)
    const entity = state.get(id)
    const readable = entity && entity.value !== null && (!access.read || access.read.has(entity.scope))
    current.push(
      readable
        ? { table: change.table, key: change.key, value: JSON.parse(entity.value!) as unknown }
        : { table: change.table, key: change.key },
    )
  }
  return current
}

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
