import { define } from '../util/own-path.js'

/**
 * The changed key paths between two stored objects: `{ 'title': 'new', 'address.city': 'Oslo' }`.
 * Nested plain objects are walked and reported by dotted path; arrays, dates, binary
 * data, maps and sets are compared by content and reported whole. A removed property
 * is reported with `undefined`. Returns `undefined` when nothing changed.
 */
export function diff(previous: unknown, next: unknown): Record<string, unknown> | undefined {
  // A plain object, as users expect to compare and print; a changed path named `__proto__`
  // is defined as data (see `put`), never through the prototype setter.
  const changes: Record<string, unknown> = {}
  if (!isPlainObject(previous) || !isPlainObject(next)) {
    if (deepEqual(previous, next)) return undefined
    changes[''] = next
    return changes
  }
  return walk(previous, next, '', changes) ? changes : undefined
}

/** `out[path] = value`, as an own data property even for `__proto__`. */
const put = (out: Record<string, unknown>, path: string, value: unknown): void => {
  if (path === '__proto__') define(out, path, value)
  else out[path] = value
}

const hasOwn = (object: object, key: string): boolean => Object.prototype.hasOwnProperty.call(object, key)

function walk(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  prefix: string,
  out: Record<string, unknown>,
): boolean {
  let changed = false
  for (const key of Object.keys(after)) {
    // Own properties only: an inherited one (a prototype's) is not part of the stored object.
    const a = hasOwn(before, key) ? before[key] : undefined
    const b = after[key]
    const path = prefix + key
    if (isPlainObject(a) && isPlainObject(b)) {
      if (walk(a, b, path + '.', out)) changed = true
    } else if (!deepEqual(a, b)) {
      put(out, path, b)
      changed = true
    }
  }
  for (const key of Object.keys(before)) {
    if (!hasOwn(after, key) && before[key] !== undefined) {
      put(out, prefix + key, undefined)
      changed = true
    }
  }
  return changed
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** Structural equality for values that IndexedDB can store. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false
  if (a instanceof Date) return a.getTime() === (b as Date).getTime()
  if (Array.isArray(a)) {
    const other = b as unknown[]
    if (a.length !== other.length) return false
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], other[i])) return false
    return true
  }
  if (a instanceof ArrayBuffer) return bytesEqual(new Uint8Array(a), new Uint8Array(b as ArrayBuffer))
  if (ArrayBuffer.isView(a)) {
    const other = b as ArrayBufferView
    return bytesEqual(
      new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
      new Uint8Array(other.buffer, other.byteOffset, other.byteLength),
    )
  }
  if (a instanceof Map) return deepEqual([...a], [...(b as Map<unknown, unknown>)])
  if (a instanceof Set) return deepEqual([...a], [...(b as Set<unknown>)])
  if (a instanceof RegExp) return a.source === (b as RegExp).source && a.flags === (b as RegExp).flags
  if (isPlainObject(a)) {
    const other = b as Record<string, unknown>
    const keys = Object.keys(a)
    if (keys.length !== Object.keys(other).length) return false
    for (const key of keys) {
      if (!Object.prototype.hasOwnProperty.call(other, key) || !deepEqual(a[key], other[key])) return false
    }
    return true
  }
  // Blobs, files and other host objects cannot be compared synchronously: count them as changed.
  return false
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
