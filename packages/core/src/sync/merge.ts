import { define } from '../util/own-path.js'
import { checkDepth, isRecord as plain } from './wire-values.js'
import { LIMITS, type WireChange } from './wire.js'

/**
 * A Dexie modification (`add()`, `remove()`, `replacePrefix()` from `dexie`) as it travels:
 * the operation, so that a server re-applies it to its own value (two clients' `add(1)`
 * make `+2`). docs/protocol.md, "Merging updates".
 */
export type FieldOp = { add: number | unknown[] } | { remove: number | unknown[] } | { replacePrefix: [string, string] }

/** A patch cannot be applied to a value: a path goes through something else than an object, or an operation meets another type. */
export class MergeError extends Error {
  override name = 'MergeError'
}

const own = (object: unknown, key: string): unknown =>
  plain(object) && Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined

/** The value at dotted path `keys` of `object` (own properties of plain objects only). */
const at = (object: unknown, keys: string[]): unknown => keys.reduce(own, object)

/** The value at a dotted path (own properties of plain objects only). */
export const valueAt = (object: unknown, path: string): unknown => at(object, path.split('.'))

/**
 * Sets (`undefined`: removes) the value at a dotted path of `target`, as own data. A missing
 * object on the way is created (nothing is created to remove a field); anything else on the
 * way — a string, a number, an array, `null` — refuses the path.
 */
function put(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.')
  const last = keys.pop()!
  for (const key of keys) {
    let next = own(target, key)
    if (next === undefined) {
      if (value === undefined) return
      define(target, key, (next = {}))
    }
    if (!plain(next)) throw new MergeError(`${path}: ${key} is not an object here`)
    target = next
  }
  if (value === undefined) delete target[last]
  else define(target, last, value)
}

/**
 * One modification applied to the value it meets, as Dexie applies it (arrays: `add` appends
 * and sorts, `remove` keeps what the list does not include, sorted; `replacePrefix` changes a
 * string that starts with the prefix and leaves anything else) — except that a number
 * operation meets only a number and an array operation only an array (a missing value counts
 * as `0` or `[]`): where Dexie would coerce, a merge refuses.
 */
export function applyOp(op: FieldOp, value: unknown, path: string): unknown {
  if ('replacePrefix' in op) {
    const [from, to] = op.replacePrefix
    return typeof value === 'string' && from && value.startsWith(from) ? to + value.slice(from.length) : value
  }
  const adding = 'add' in op
  const term = adding ? op.add : op.remove
  const missing = value === undefined || value === null
  if (Array.isArray(term)) {
    if (!missing && !Array.isArray(value)) throw new MergeError(`${path} is not a list here`)
    const list = missing ? [] : (value as unknown[])
    return (adding ? [...list, ...term] : list.filter((item) => !term.includes(item))).sort()
  }
  if (!missing && typeof value !== 'number') throw new MergeError(`${path} is not a number here`)
  const number = missing ? 0 : value
  return adding ? number + term : number - term
}

/**
 * Applies an update's patch to `target` (a copy of the server's value, changed in place):
 * each path of `paths` takes its value in `source` (the value the writer stored; absent
 * there: the field is removed), then each operation of `ops` applies to the value at its
 * path. Throws {@link MergeError} when a path or an operation does not fit `target`.
 */
export function applyPatch(
  target: Record<string, unknown>,
  source: unknown,
  paths: readonly string[],
  ops: Readonly<Record<string, FieldOp>> = {},
): Record<string, unknown> {
  for (const path of paths) if (!Object.hasOwn(ops, path)) put(target, path, valueAt(source, path))
  for (const path of Object.keys(ops)) put(target, path, applyOp(ops[path]!, valueAt(target, path), path))
  return target
}

/** A plain object none of whose property names, at any depth, holds a dot. */
const dotless = (value: unknown): boolean =>
  plain(value) && Object.keys(value).every((key) => !key.includes('.') && (!plain(value[key]) || dotless(value[key])))

/**
 * Whether a patch's paths name their places without doubt in the value it was sent with: no
 * property name of the value holds a dot, and each removed path's object is there (else a
 * removed property whose own name holds a dot could be taken for a nested one). A server
 * takes a patch that does not as a whole value.
 */
export function namesItsPaths(change: Pick<WireChange, 'value' | 'patch' | 'ops'>): boolean {
  const { value, patch = [], ops = {} } = change
  return (
    dotless(value) &&
    patch.every(
      (path) =>
        Object.hasOwn(ops, path) ||
        valueAt(value, path) !== undefined ||
        plain(at(value, path.split('.').slice(0, -1))),
    )
  )
}

/**
 * The value a server stores for a merged update (docs/protocol.md, "Merging updates"): the
 * change's paths and operations applied to a copy of `current`, its own value. A patch whose
 * paths are not clear ({@link namesItsPaths}) is taken whole: its `value`. Throws
 * {@link MergeError} when a path or an operation does not fit `current`, or the merged value
 * would nest deeper than the protocol allows.
 */
export function mergeValue(current: Record<string, unknown>, change: WireChange): unknown {
  if (!namesItsPaths(change)) return change.value
  const merged = applyPatch(current, change.value, change.patch ?? [], change.ops)
  // A long path can nest the merged value deeper than any client may take (docs/protocol.md, "Limits").
  try {
    checkDepth(merged)
  } catch {
    throw new MergeError(`the merged value would nest deeper than ${LIMITS.depth} levels`)
  }
  return merged
}

/**
 * A merged update against a server's own value (undefined: the server has none): the value to
 * store, or why the batch is refused — `gone` (nothing to merge into: delete wins) or
 * `unmergeable` (see {@link mergeValue}). `name` names the entity in the reason.
 */
export function mergeUpdate(
  current: Record<string, unknown> | undefined,
  change: WireChange,
  name: string,
): { value: unknown } | { code: 'gone' | 'unmergeable'; reason: string } {
  if (!current) return { code: 'gone', reason: `${name} was deleted on the server` }
  try {
    return { value: mergeValue(current, change) }
  } catch (error) {
    if (!(error instanceof MergeError)) throw error
    return { code: 'unmergeable', reason: `${name}: ${error.message}` }
  }
}

/**
 * Why a batch whose merged changes (`json`, as stored) grew past the batch limit is refused,
 * or undefined: a server must not accept what it could not send back (docs/protocol.md, "Limits").
 */
export function mergedTooLarge(json: readonly string[]): string | undefined {
  const bytes = json.reduce((sum, text) => sum + text.length, 0)
  return bytes > LIMITS.batchBytes ? `merged, the batch would be over ${LIMITS.batchBytes} bytes` : undefined
}

/** What is wrong with a change's `patch` and `ops` as a server receives them, or undefined. */
export function patchProblem(change: Record<string, unknown>): string | undefined {
  const { type, patch, ops, value } = change
  if (patch === undefined && ops === undefined) return undefined
  if (type !== 'update') return 'only an update carries patch or ops'
  if (!plain(value)) return 'a patched value must be an object'
  const isPath = (path: unknown): boolean =>
    typeof path === 'string' && path.split('.').every((key) => key !== '') && path.length <= 1000
  if (!Array.isArray(patch) || !patch.every(isPath)) return 'patch must be a list of dotted paths'
  if (ops === undefined) return undefined
  if (!plain(ops)) return 'ops must be an object'
  for (const [path, op] of Object.entries(ops)) {
    if (!isPath(path) || !plain(op) || Object.keys(op).length !== 1) return `ops.${path} is not an operation`
    const { add, remove, replacePrefix } = op
    const term = add ?? remove
    const valid =
      replacePrefix !== undefined
        ? Array.isArray(replacePrefix) &&
          replacePrefix.length === 2 &&
          replacePrefix.every((s) => typeof s === 'string')
        : Array.isArray(term) || (typeof term === 'number' && Number.isFinite(term))
    if (!valid) return `ops.${path} is not an operation`
  }
  return undefined
}
