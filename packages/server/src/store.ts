import {
  wireKeyText,
  type PushBatch,
  type PushReply,
  type WireChange,
  type WireCurrent,
} from '@changecast/core/protocol'
import type { Database, Queryable } from './db/port.js'
import type { Names } from './names.js'

/** A stored batch, as read back (its changes as the JSON text they were stored as). */
export interface StoredBatch {
  rev: number
  origin: string
  tx: string
  at: number
  changes: string
  size: number
}

/** A pushed batch with the server's decision on it (made before the transaction). */
export interface Decided {
  batch: PushBatch
  /** Why it is refused (validation, permission), or undefined to accept it. */
  refusal?: string
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

/** The log's epoch and newest revision. `lock`: hold the row (every write does) until the transaction ends. */
export async function readMeta(db: Queryable, t: Names, lock = false): Promise<{ epoch: string; head: number }> {
  const [row] = await db.query<{ epoch: string; head: string | number }>(
    `select epoch, head from ${t.meta} where id = 1${lock ? ' for update' : ''}`,
  )
  return { epoch: row!.epoch, head: Number(row!.head) }
}

/** One push request, decided on and waiting to be stored. */
export interface PendingPush {
  clientId: string
  decided: readonly Decided[]
}

/** What became of a push: its reply, or a conflict that refuses it (409). */
export type PushOutcome = { reply: PushReply; appended: number } | ConflictError

/**
 * Records push requests in one transaction (a group commit: requests that arrive while
 * another transaction runs are stored together), each per the protocol: batches in order;
 * one already accepted under the same `(clientId, rev)` and `tx` is acked again with its
 * revision (a different `tx` refuses that request, and only it); a refused one changes
 * nothing and gets the current state of what it touched, as of that moment; an accepted one
 * is appended with the next revision and becomes the state of its entities. The meta row is
 * locked first, so revisions commit in order.
 */
export async function push(db: Database, t: Names, requests: readonly PendingPush[]): Promise<PushOutcome[]> {
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
    const appended: Appended[] = []
    const outcomes = requests.map(({ clientId, decided }): PushOutcome => {
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
        } else if (refusal !== undefined) {
          reply.rejected.push({
            rev: batch.rev,
            reason: refusal,
            serverRev: head,
            current: currentOf(batch.changes, state),
          })
        } else {
          const changes = JSON.stringify(batch.changes)
          appended.push({
            rev: ++head,
            origin: clientId,
            clientRev: batch.rev,
            tx: batch.tx,
            at: batch.at,
            changes,
            size: changes.length,
          })
          accepted.set(id(batch.rev), { rev: head, tx: batch.tx })
          apply(state, batch.changes, head)
          reply.acked.push({ rev: batch.rev, serverRev: head })
          count++
        }
      }
      return { reply, appended: count }
    })
    if (appended.length > 0) await store(tx, t, appended, state, head)
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
): Promise<number> {
  const meta = await readMeta(tx, t, true)
  const rev = meta.head + 1
  const json = JSON.stringify(changes)
  const state: State = new Map()
  apply(state, changes, rev)
  const batch = {
    rev,
    origin,
    clientRev: null,
    tx: `${origin}.${rev}`,
    at: Date.now(),
    changes: json,
    size: json.length,
  }
  await store(tx, t, [batch], state, rev)
  return rev
}

/** Entities by table and key: their value (JSON text, null: none) and, once written here, their revision. */
type State = Map<string, { table: string; key: string; value: string | null; rev?: number }>

/** A batch about to be appended: `clientRev` is null for backend writes. */
type Appended = StoredBatch & { clientRev: number | null }

async function readEntities(tx: Queryable, t: Names, changes: readonly WireChange[]): Promise<State> {
  const state: State = new Map()
  const tables: string[] = []
  const keys: string[] = []
  for (const change of changes) {
    const key = keyTextOf(change)
    if (state.has(entityId(change.table, key))) continue
    state.set(entityId(change.table, key), { table: change.table, key, value: null })
    tables.push(change.table)
    keys.push(key)
  }
  if (tables.length === 0) return new Map()
  const rows = await tx.query<{ tbl: string; key: string; value: string | null }>(
    `select tbl, key, value from ${t.entities} where tbl = any($1::text[]) and key = any($2::text[])`,
    [[...new Set(tables)], keys],
  )
  const found: State = new Map()
  for (const row of rows) {
    const id = entityId(row.tbl, row.key)
    if (state.has(id)) found.set(id, { table: row.tbl, key: row.key, value: row.value })
  }
  return found
}

/** An accepted batch's effect on the state: the last change to an entity wins. */
function apply(state: State, changes: readonly WireChange[], rev: number): void {
  for (const change of changes) {
    const key = keyTextOf(change)
    state.set(entityId(change.table, key), {
      table: change.table,
      key,
      value: change.type === 'delete' ? null : JSON.stringify(change.value),
      rev,
    })
  }
}

/** Every entity a batch touched, with its current state (no value: it does not exist). */
function currentOf(changes: readonly WireChange[], state: State): WireCurrent[] {
  const seen = new Set<string>()
  const current: WireCurrent[] = []
  for (const change of changes) {
    const id = entityId(change.table, keyTextOf(change))
    if (seen.has(id)) continue
    seen.add(id)
    const value = state.get(id)?.value
    current.push(
      value === null || value === undefined
        ? { table: change.table, key: change.key }
        : { table: change.table, key: change.key, value: JSON.parse(value) as unknown },
    )
  }
  return current
}

/**
 * Writes appended batches, the entities they changed (the state's entries with a rev), and
 * the new head, in one statement (one round trip).
 */
async function store(tx: Queryable, t: Names, batches: Appended[], state: State, head: number): Promise<void> {
  const written = [...state.values()].filter((entry) => entry.rev !== undefined)
  await tx.query(
    `with appended as (
       insert into ${t.batches} (rev, origin, client_rev, tx, at, changes, size)
       select * from unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::float8[], $6::text[], $7::int[])
     ), entities as (
       insert into ${t.entities} (tbl, key, value, rev)
       select * from unnest($8::text[], $9::text[], $10::text[], $11::bigint[])
       on conflict (tbl, key) do update set value = excluded.value, rev = excluded.rev
     )
     update ${t.meta} set head = $12 where id = 1`,
    [
      batches.map((b) => b.rev),
      batches.map((b) => b.origin),
      batches.map((b) => b.clientRev),
      batches.map((b) => b.tx),
      batches.map((b) => b.at),
      batches.map((b) => b.changes),
      batches.map((b) => b.size),
      written.map((e) => e.table),
      written.map((e) => e.key),
      written.map((e) => e.value),
      written.map((e) => e.rev),
      head,
    ],
  )
}

/** Batches after revision `after`, in order, at most `limit`. */
export async function readAfter(db: Queryable, t: Names, after: number, limit: number): Promise<StoredBatch[]> {
  const rows = await db.query<{
    rev: string | number
    origin: string
    tx: string
    at: number
    changes: string
    size: number
  }>(`select rev, origin, tx, at, changes, size from ${t.batches} where rev > $1 order by rev limit $2`, [after, limit])
  return rows.map((row) => ({ ...row, rev: Number(row.rev), at: Number(row.at), size: Number(row.size) }))
}

/** A stored batch as the protocol's JSON, without parsing its changes again. */
export function batchJson(batch: StoredBatch): string {
  return `{"rev":${batch.rev},"tx":${JSON.stringify(batch.tx)},"origin":${JSON.stringify(batch.origin)},"at":${batch.at},"changes":${batch.changes}}`
}
