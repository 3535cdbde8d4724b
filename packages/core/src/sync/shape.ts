/**
 * A compact checker of JSON shapes, for what crosses a boundary (server replies, messages
 * from other contexts). A spec lists fields as `name:kind`, separated by spaces, with `?`
 * after the kind when the field may be absent:
 *
 * `s` non-empty string · `p` short text (1–200 characters) · `t` string · `r` revision
 * (integer ≥ 1) · `c` count (integer ≥ 0) · `n` number · `b` boolean · `l` list ·
 * `L` list of strings · `o` object.
 */

/** A plain object (not an array, not null). */
export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

export const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0
export const isRev = (value: unknown): value is number => isCount(value) && value > 0

const KINDS: Record<string, [(value: unknown) => boolean, string]> = {
  s: [(value) => typeof value === 'string' && value !== '', 'a non-empty string'],
  p: [(value) => typeof value === 'string' && value !== '' && value.length <= 200, 'a short text'],
  t: [(value) => typeof value === 'string', 'a string'],
  r: [isRev, 'a revision'],
  c: [isCount, 'a count'],
  n: [(value) => typeof value === 'number', 'a number'],
  b: [(value) => typeof value === 'boolean', 'a boolean'],
  l: [Array.isArray, 'a list'],
  L: [(value) => Array.isArray(value) && value.every((item) => typeof item === 'string'), 'a list of strings'],
  o: [isRecord, 'an object'],
}

/**
 * What is wrong with `value` against `spec` (see above), or `undefined` when nothing is.
 * `path` names the value in the answer (e.g. `acked[2]`).
 */
export function shapeProblem(value: unknown, spec: string, path?: string): string | undefined {
  if (!isRecord(value)) return `${path ?? 'it'} is not an object`
  for (const field of spec.split(' ')) {
    const [name, kind] = field.split(':') as [string, string]
    const item = value[name]
    const [valid, expected] = KINDS[kind[0]!]!
    if ((kind[1] !== '?' || item !== undefined) && !valid(item)) {
      return `${path ? `${path}.` : ''}${name} must be ${expected}`
    }
  }
  return undefined
}
