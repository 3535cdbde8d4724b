import type { FieldOp } from '../sync/merge.js'
import type { ChangeEvent, ChangeSource } from '../types.js'
import { cloneValue } from '../util/clone.js'
import { encodeKey } from '../util/encode-key.js'
import { diff } from './diff.js'

/**
 * One write request as Changecast saw it, after it ran: what was asked, what was there
 * before, and what IndexedDB answered. Pure data, so the mapping below can be tested
 * without a database.
 */
export interface WriteRecord {
  /** `add` and `put` store values; `delete` removes keys (a range delete is given as its keys). */
  op: 'add' | 'put' | 'delete'
  table: string
  /** Final key of each item: the write's results for add/put, the keys for delete. */
  keys: readonly unknown[]
  /** add/put: the stored values (Changecast's own copies), in item order. */
  values?: readonly unknown[]
  /** put/delete: the value before the write per item (`undefined` when there was none). */
  previous?: readonly unknown[]
  /** Items that failed (by index): they produce no event. */
  failures?: Readonly<Record<number, unknown>>
  /** put: Dexie's modifications (`add()`, `remove()`, `replacePrefix()`) by key path, put on update events. */
  ops?: Record<string, FieldOp> | undefined
  /** Put `previous` on update and delete events. */
  keepPrevious: boolean
}

/** Who made the write, stamped on every event. */
export interface EventStamp {
  tx: string
  origin: string
  source: ChangeSource
  at: number
  /** Entities (`table\0encodedKey`) whose deletes are removals from this client's view. */
  removed?: ReadonlySet<string>
}

const ABSENT = Symbol('absent')

/**
 * Maps one write to its change events, in item order:
 * - `add` → `create` for each item that did not fail;
 * - `put` → `create` for a new key, `update` (with `changes`) for an existing key, nothing
 *   when the stored object did not change;
 * - `delete` → `delete` for each key that existed, nothing for a key that did not.
 * Items of one request that repeat a key see the earlier item as their previous value.
 */
export function toChangeEvents(write: WriteRecord, stamp: EventStamp): ChangeEvent[] {
  const { op, table, keys, values, previous, failures, keepPrevious, ops } = write
  const events: ChangeEvent[] = []
  // Only a request with several items can repeat a key; track the state it left per key.
  const seen = keys.length > 1 ? new Map<string, unknown>() : undefined

  for (let i = 0; i < keys.length; i++) {
    if (failures && failures[i] !== undefined) continue
    const key = keys[i]
    if (key === undefined || key === null) continue
    const id = seen ? encodeKey(key) : ''
    let before: unknown = previous?.[i]
    if (seen?.has(id)) {
      // The earlier item's value, copied: no two events share an object.
      const earlier = seen.get(id)
      before = earlier === ABSENT ? undefined : cloneValue(earlier)
    }

    if (op === 'delete') {
      seen?.set(id, ABSENT)
      if (before === undefined) continue
      const gone = event('delete', table, key, stamp, undefined, keepPrevious ? before : undefined)
      if (stamp.removed?.has(`${table}\u0000${encodeKey(key)}`)) gone.removed = true
      events.push(gone)
      continue
    }

    const value = values?.[i]
    seen?.set(id, value)
    if (op === 'add' || before === undefined) {
      events.push(event('create', table, key, stamp, value, undefined))
      continue
    }
    const changes = diff(before, value)
    if (!changes) continue
    const update = event('update', table, key, stamp, value, keepPrevious ? before : undefined, changes)
    if (ops) update.ops = cloneValue(ops)
    events.push(update)
  }
  return events
}

function event(
  type: ChangeEvent['type'],
  table: string,
  key: unknown,
  stamp: EventStamp,
  value: unknown,
  previous: unknown,
  changes?: Record<string, unknown>,
): ChangeEvent {
  const result = {
    type,
    table,
    key: key as ChangeEvent['key'],
    source: stamp.source,
    origin: stamp.origin,
    tx: stamp.tx,
    at: stamp.at,
  } as { value?: unknown; previous?: unknown; changes?: Record<string, unknown> }
  if (value !== undefined) result.value = value
  if (previous !== undefined) result.previous = previous
  if (changes) result.changes = changes
  // The fields of each type are set above: a value on create and update, changes on update.
  return result as ChangeEvent
}
