/**
 * Key-path helpers that only ever touch own properties, so a stored object with an own
 * `__proto__` property (JSON.parse makes those) is read and written as data, never as
 * the prototype.
 */
const own = (object: unknown, key: string): unknown =>
  typeof object === 'object' && object !== null && Object.prototype.hasOwnProperty.call(object, key)
    ? (object as Record<string, unknown>)[key]
    : undefined

/** The value at a dotted key path, reading own properties only. */
export function getOwnPath(object: unknown, path: string): unknown {
  let value = object
  for (const key of path.split('.')) value = own(value, key)
  return value
}

/** Sets (or, for `undefined`, deletes) the value at a dotted key path, as own data properties. */
export function setOwnPath(object: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.')
  let target = object
  for (const key of keys.slice(0, -1)) {
    let next = own(target, key)
    if (typeof next !== 'object' || next === null) {
      if (value === undefined) return
      next = {}
      define(target, key, next)
    }
    target = next as Record<string, unknown>
  }
  const last = keys[keys.length - 1]!
  if (value === undefined) delete target[last]
  else define(target, last, value)
}

/** Assigns a property as data, even when it is called `__proto__`. */
export function define(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true })
}
