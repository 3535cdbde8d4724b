import type { IndexableType } from 'dexie'
import { isRecord } from './shape.js'
import { LIMITS, WireError, type WireKey } from './wire.js'

export { isRecord }

// ---- keys -------------------------------------------------------------------------------

/** An IndexedDB key as a {@link WireKey}. */
export function encodeWireKey(key: unknown, depth = 0): WireKey {
  if (typeof key === 'string') return key
  if (typeof key === 'number') {
    if (Number.isFinite(key)) return key
    if (key === Infinity || key === -Infinity) return { $number: key > 0 ? 'Infinity' : '-Infinity' }
  } else if (key instanceof Date) {
    if (!Number.isNaN(key.getTime())) return { $date: key.toISOString() }
  } else if (Array.isArray(key) && depth < LIMITS.depth) {
    return key.map((part) => encodeWireKey(part, depth + 1))
  } else if (key instanceof ArrayBuffer || ArrayBuffer.isView(key)) {
    const bytes =
      key instanceof ArrayBuffer ? new Uint8Array(key) : new Uint8Array(key.buffer, key.byteOffset, key.byteLength)
    let binary = ''
    for (const byte of bytes) binary += String.fromCharCode(byte)
    return { $bytes: btoa(binary) }
  }
  throw new WireError(`${String(key)} is not a valid key`)
}

/** A {@link WireKey} as an IndexedDB key. Throws {@link WireError} for anything else. */
export function decodeWireKey(wire: unknown, depth = 0): IndexableType {
  if (typeof wire === 'string') return wire
  if (typeof wire === 'number' && Number.isFinite(wire)) return wire
  if (Array.isArray(wire) && depth < LIMITS.depth)
    return wire.map((part) => decodeWireKey(part, depth + 1)) as IndexableType
  if (isRecord(wire)) {
    const fields = Object.keys(wire)
    if (fields.length === 1) {
      const { $date, $bytes, $number } = wire
      if (typeof $date === 'string') {
        const date = new Date($date)
        if (!Number.isNaN(date.getTime())) return date
      }
      if (typeof $bytes === 'string') {
        try {
          return Uint8Array.from(atob($bytes), (char) => char.charCodeAt(0)).buffer
        } catch {
          // not base64: falls through to the error below
        }
      }
      if ($number === 'Infinity' || $number === '-Infinity') return $number === 'Infinity' ? Infinity : -Infinity
    }
  }
  throw new WireError(`${short(wire)} is not a valid key`)
}

// ---- values -----------------------------------------------------------------------------

/**
 * Checks that JSON carries `value` faithfully and returns it as it will arrive (dates as
 * ISO strings, which JSON does anyway). Throws {@link WireError} with the path of the first
 * value JSON would lose or refuse: a bigint, a cycle, a Map, a Set, binary data, a
 * number that is not finite, or nesting deeper than the protocol allows.
 */
export function checkWireValue(value: unknown, path = 'value', depth = 0, parents: unknown[] = []): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || value === undefined) return
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new WireError(`${path} is ${value}, which JSON cannot carry`)
    return
  }
  if (typeof value !== 'object') throw new WireError(`${path} is a ${typeof value}, which JSON cannot carry`)
  if (value instanceof Date) return
  if (depth >= LIMITS.depth) throw new WireError(`${path} is nested deeper than ${LIMITS.depth} levels`)
  if (parents.includes(value)) throw new WireError(`${path} refers back to itself (a cycle)`)
  const proto: unknown = Object.getPrototypeOf(value)
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) {
    throw new WireError(`${path} is a ${value.constructor?.name ?? 'non-plain object'}, which JSON cannot carry`)
  }
  parents.push(value)
  for (const [name, item] of Object.entries(value)) checkWireValue(item, `${path}.${name}`, depth + 1, parents)
  parents.pop()
}

/** Throws {@link WireError} when a value read from the network nests deeper than the protocol allows. */
export function checkDepth(value: unknown, depth = 0): void {
  // Stops at the limit, so a hostile value cannot exhaust the stack.
  if (typeof value !== 'object' || value === null) return
  if (depth >= LIMITS.depth) throw new WireError(`a value is nested deeper than ${LIMITS.depth} levels`)
  for (const item of Object.values(value)) checkDepth(item, depth + 1)
}

/**
 * At most `limit` characters of a value, in JSON's notation, for error messages. It never
 * serialises the whole value: it stops once it has `limit` characters, so a hostile one
 * (megabytes, thousands of levels deep) cannot throw and costs next to nothing (an object's
 * keys are listed, a string is cut first, an array is read index by index).
 */
export function short(value: unknown, limit = 60): string {
  let out = ''
  const visit = (item: unknown): void => {
    if (typeof item !== 'object' || item === null) {
      out += typeof item === 'string' ? JSON.stringify(item.slice(0, limit)) : String(item)
      return
    }
    const array = Array.isArray(item)
    const [open, close] = array ? '[]' : '{}'
    let before = open
    // An array's indices one by one: a wide one is not listed first.
    for (const key of array ? item.keys() : Object.keys(item)) {
      if (out.length > limit) return
      out += `${before}${array ? '' : `${JSON.stringify(key)}:`}`
      before = ','
      visit((item as Record<string | number, unknown>)[key])
    }
    out += `${before === open ? open : ''}${close}`
  }
  visit(value)
  return out.length > limit ? `${out.slice(0, limit)}…` : out
}
