const objectProto = Object.prototype
const arrayProto = Array.prototype

/**
 * Freezes `value` and every plain object and array it holds, and returns it. Maps, sets,
 * dates and binary data cannot be made read-only by freezing and are left as they are.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    const proto: unknown = Object.getPrototypeOf(value)
    if (proto === objectProto || proto === arrayProto || proto === null) {
      Object.freeze(value)
      for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
    }
  }
  return value
}
