const objectProto = Object.prototype
const arrayProto = Array.prototype
const dateProto = Date.prototype

/** Thrown inside the fast path when a value needs the real algorithm (one instance: throwing it is cheap). */
const NOT_PLAIN = new Error('not plain data')

/**
 * A structured clone of `value`, as `structuredClone` would make it, but fast for the
 * values apps store most: plain objects, arrays, dates and primitives are copied in
 * JavaScript (own enumerable string keys, getters read once, shared references and cycles
 * kept), which costs far less per call than the platform's serializer. Anything else
 * (maps, sets, binary data, blobs, class instances, sparse arrays…) goes to
 * `structuredClone`, which also throws the platform's `DataCloneError` for what cannot be
 * cloned.
 */
export function cloneValue<T>(value: T): T {
  if (typeof value !== 'object' || value === null) {
    return typeof value === 'function' || typeof value === 'symbol' ? structuredClone(value) : value
  }
  try {
    return copy(value, undefined) as T
  } catch (error) {
    if (error !== NOT_PLAIN) throw error
    return structuredClone(value)
  }
}

function copy(value: object, seen: Map<object, unknown> | undefined): unknown {
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto === dateProto) return new Date((value as Date).getTime())
  const isArray = proto === arrayProto
  if (!isArray && proto !== objectProto && proto !== null) throw NOT_PLAIN
  const keys = Object.keys(value)
  if (isArray && keys.length !== (value as unknown[]).length) throw NOT_PLAIN // sparse, or extra properties
  const out = (isArray ? new Array((value as unknown[]).length) : {}) as Record<string, unknown>
  seen?.set(value, out)
  for (const key of keys) {
    let item = (value as Record<string, unknown>)[key]
    if (typeof item === 'object' && item !== null) {
      if (!seen) {
        seen = new Map([[value, out]])
      }
      item = seen.has(item) ? seen.get(item) : copy(item, seen)
    } else if (typeof item === 'function' || typeof item === 'symbol') {
      throw NOT_PLAIN
    }
    if (key === '__proto__')
      Object.defineProperty(out, key, { value: item, writable: true, enumerable: true, configurable: true })
    else out[key] = item
  }
  return out
}
