import type { IndexableType } from 'dexie'
import { cmp, Dexie } from '../util/dexie.js'
import type { EntityChange } from './context.js'
import { checkWireChange, decodeWireKey, isRecord, WireError } from './protocol.js'
import { keyId } from './store.js'

/**
 * A change from the server, made ready to write here, or `undefined` for a table this
 * database does not sync. Throws {@link WireError} when the change cannot be applied as
 * it is: an invalid key or type, a value nested too deep, or — for a table that keeps
 * its key inside its values — a value that is not an object or whose key differs from
 * the change's key (JSON turns date keys into strings: those are turned back).
 */
export function decodeChange(db: Dexie, synced: (table: string) => boolean, wire: unknown): EntityChange | undefined {
  checkWireChange(wire)
  const key = decodeWireKey(wire.key)
  const { type, table } = wire
  if (!synced(table)) return undefined
  const change: EntityChange = { type, table, key, id: keyId(table, key) }
  if (type !== 'delete') change.value = fitValue(db, table, key, wire.value)
  else if ((wire as { removed?: unknown }).removed === true) change.removed = true
  return change
}

/** A current value of a rejection, made ready to write here (see {@link decodeChange}). */
export const decodeCurrent = (
  db: Dexie,
  synced: (table: string) => boolean,
  { table, key, value }: { table: string; key: unknown; value?: unknown },
): EntityChange | undefined =>
  decodeChange(db, synced, { type: value === undefined ? 'delete' : 'update', table, key, value })

function fitValue(db: Dexie, table: string, key: IndexableType, value: unknown): unknown {
  const keyPath = db.table(table).schema.primKey.keyPath
  if (!keyPath) return value
  if (!isRecord(value)) throw new WireError(`the value of ${table} ${json(key)} is not an object`)
  const paths = typeof keyPath === 'string' ? [keyPath] : keyPath
  const parts = typeof keyPath === 'string' ? [key] : (key as IndexableType[])
  if (!Array.isArray(parts) || parts.length !== paths.length) {
    throw new WireError(`the key ${json(key)} does not fit the primary key of ${table}`)
  }
  paths.forEach((path, i) => {
    const wanted = parts[i]
    const found: unknown = Dexie.getByKeyPath(value, path)
    if (found !== undefined && found !== null && sameKey(found, wanted)) return
    // JSON carried the key as its JSON form (a date as an ISO string): put the typed key back.
    if (found !== undefined && json(found) === json(wanted)) Dexie.setByKeyPath(value, path, wanted)
    else throw new WireError(`the value of ${table} ${json(key)} holds the key ${json(found)} instead`)
  })
  return value
}

function sameKey(a: unknown, b: unknown): boolean {
  try {
    return cmp(a, b) === 0
  } catch {
    return false
  }
}

const json = (value: unknown): string => JSON.stringify(value) ?? String(value)
