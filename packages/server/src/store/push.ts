import {
  decodeWireKey,
  mergedTooLarge,
  mergeUpdate,
  type PushBatch,
  type PushReply,
  type WireChange,
  type WireCurrent,
} from '@changecast/core/protocol'
import type { Database, Queryable } from '../db/port.js'
import type { Names } from '../names.js'
import type { Refusal } from '../rules.js'
import { DEFAULT_SCOPE, entityId, keyTextOf, readMeta, type Access, type ScopeOf } from './model.js'

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
/** One push request, decided on and waiting to be stored. */
export interface PendingPush {
  clientId: string
  decided: readonly Decided[]
  /** The scopes its principal may read and write. */
  access: Access
  /** A confirming push (docs/protocol.md): nothing is stored; what is not known is rejected `unknown`. */
  confirm?: boolean
  /**
   * Reviews a batch again (schemas, `authorize`) when merging made its values other than those
   * reviewed before the transaction: what is stored has always passed the rules.
   */
  review?: (batch: PushBatch) => Promise<Refusal | undefined>
}

/** What became of a push: its reply, or a conflict that refuses it (409). */
export type PushOutcome = { reply: PushReply; appended: number } | ConflictError

/** How the store places changes in scopes, and which tables replace instead of merging updates. */
export interface Scoping {
  scopeOf?: ScopeOf | undefined
  /** Tables whose updates replace the whole value even when they carry a patch. */
  replace?: ReadonlySet<string>
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
    const outcomes: PushOutcome[] = []
    for (const { clientId, decided, access, confirm, review } of requests) {
      const id = (rev: number) => `${clientId}\u0000${rev}`
      const conflict = decided.find(({ batch }) => {
        const before = accepted.get(id(batch.rev))
        return before && before.tx !== batch.tx
      })
      if (conflict) {
        const { rev } = conflict.batch
        outcomes.push(new ConflictError(`rev ${rev} of client ${clientId} was already used by another transaction`))
        continue
      }
      const reply: PushReply = { epoch: meta.epoch, acked: [], rejected: [] }
      let count = 0
      for (const { batch, refusal } of decided) {
        const before = accepted.get(id(batch.rev))
        if (before) {
          reply.acked.push(ack(batch.rev, before.rev, batch.changes, scoping, access.read, state))
          continue
        }
        let planned = confirm ? UNKNOWN : (refusal ?? plan(state, batch.changes, scoping, access))
        // Merged values other than those reviewed: the rules see what would be stored.
        if (Array.isArray(planned) && review && planned.some((row) => row.merged)) {
          const changes = planned.filter((row) => !row.removed).map((row) => row.change)
          planned = (await review({ ...batch, changes })) ?? planned
        }
        if (!Array.isArray(planned)) {
          if (planned.detail) console.warn(`[changecast-server] refused ${planned.reason}: ${planned.detail}`)
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
        // Entities merged otherwise than the client sent them (the last change of each decides).
        const merged = new Map(planned.map((row) => [entityId(row.table, row.key), row.merged === true]))
        reply.acked.push(ack(batch.rev, head, batch.changes, scoping, access.read, state, merged))
        count++
      }
      outcomes.push({ reply, appended: count })
    }
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

/**
 * An ack. `current` lists the entities the batch left in a scope the request may not read
 * (its principal may write there, not read), without values: the client lets them go; and
 * the merged entities whose value the client does not have — on a first ack those merged
 * otherwise than the client's own value, on an ack given again all of them — with the
 * server's value now (docs/protocol.md, "Merging updates"). `merged` (a first ack): per
 * entity, whether the batch's last change of it was merged otherwise than sent; absent for an
 * ack given again.
 */
function ack(
  rev: number,
  serverRev: number,
  changes: readonly WireChange[],
  { scopeOf }: Scoping,
  read: ReadonlySet<string> | undefined,
  state: State,
  merged?: ReadonlyMap<string, boolean>,
): PushReply['acked'][number] {
  const last = new Map<string, WireChange>()
  for (const change of changes) last.set(entityId(change.table, keyTextOf(change)), change)
  const current: WireCurrent[] = []
  for (const [id, { type, table, key, value, patch }] of last) {
    if (type === 'delete') continue
    const entity = state.get(id)
    if (patch && entity?.value != null && (!merged || merged.get(id))) {
      const readable = !read || read.has(entity.scope)
      current.push(readable ? { table, key, value: JSON.parse(entity.value) as unknown } : { table, key })
      continue
    }
    if (!read) continue
    let scope = DEFAULT_SCOPE
    try {
      if (scopeOf) scope = scopeOf({ table, key: decodeWireKey(key), value })
    } catch {
      continue
    }
    if (!read.has(scope)) current.push({ table, key })
  }
  return current.length > 0 ? { rev, serverRev, current } : { rev, serverRev }
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
  /** The change as stored (merged updates: with the merged value). */
  change: WireChange
  /** A merged update whose value is not the one the client sent. */
  merged?: boolean
}

/**
 * The rows a batch's changes become, in order (an entity moved to another scope: a removal
 * in the old one, then its value in the new one), or why the batch is refused. Reads the
 * state as earlier batches left it; changes nothing.
 */
function plan(
  state: State,
  changes: readonly WireChange[],
  { scopeOf, replace }: Scoping,
  access: Access,
): Planned[] | Refusal {
  const overlay = new Map<string, Entity>()
  const rows: Planned[] = []
  for (let change of changes) {
    const key = keyTextOf(change)
    const id = entityId(change.table, key)
    const before = overlay.get(id) ?? state.get(id)
    const exists = before !== undefined && before.value !== null
    let merged = false
    // The merged value as JSON, computed once.
    let text: string | undefined
    if (change.patch && !replace?.has(change.table)) {
      // A merged update applies its paths and operations to the server's value (docs/protocol.md).
      const outcome = mergeUpdate(
        exists ? (JSON.parse(before.value!) as Record<string, unknown>) : undefined,
        change,
        `${change.table} ${key}`,
      )
      if (!('value' in outcome)) return outcome
      text = JSON.stringify(outcome.value)
      merged = text !== JSON.stringify(change.value)
      change = { ...change, value: outcome.value }
    }
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
    const forbidden = (detail: string): Refusal => ({
      code: 'forbidden',
      reason: `not allowed to ${change.type} ${change.table} ${key}`,
      detail: `${access.principal ?? 'the writer'} may not write scope ${detail}`,
    })
    if (access.write && !access.write.has(scope)) return forbidden(JSON.stringify(scope))
    if (exists && access.write && !access.write.has(before.scope)) {
      return forbidden(`${JSON.stringify(before.scope)}, where the entity is`)
    }
    if (exists && change.type !== 'delete' && before.scope !== scope) {
      const removal = { type: 'delete' as const, table: change.table, key: change.key, removed: true }
      rows.push({ ...removal, key, scope: before.scope, value: null, json: JSON.stringify(removal), change: removal })
    }
    const value = change.type === 'delete' ? null : (text ?? JSON.stringify(change.value))
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
        change,
        merged,
      })
    }
    overlay.set(id, { table: change.table, key, value, scope })
  }
  const tooLarge = rows.some((row) => row.merged) && mergedTooLarge(rows.map((row) => row.json))
  return tooLarge ? { code: 'invalid', reason: tooLarge } : rows
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
