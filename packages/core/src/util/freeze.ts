const plain = new Set<unknown>([Object.prototype, Array.prototype, null])

/**
 * Freezes `value` and every plain object and array it holds, and returns it. Maps, sets,
 * dates and binary data cannot be made read-only by freezing and are left as they are.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value && !Object.isFrozen(value) && plain.has(Object.getPrototypeOf(value))) {
    Object.freeze(value)
    for (const key in value) deepFreeze(value[key])
  }
  return value
}
