import { describe, expect, it } from 'vitest'
import { cloneValue } from '../src/util/clone.js'

describe('cloneValue', () => {
  const shared = { n: 1 }
  const cyclic: Record<string, unknown> = { name: 'loop' }
  cyclic.self = cyclic
  const cases: Array<[string, unknown]> = [
    ['a flat row', { id: 1, title: 'x', done: false, nothing: null, missing: undefined, big: 10n }],
    ['nested objects and arrays', { a: { b: [1, { c: 'd' }] }, list: [[1, 2], []] }],
    ['dates', { at: new Date(5), list: [new Date(6)] }],
    ['shared references', { left: shared, right: shared }],
    ['a cycle', cyclic],
    ['a null-prototype object', Object.assign(Object.create(null) as object, { a: 1 })],
    [
      'a map, a set and bytes (the platform clones those)',
      { m: new Map([[1, 2]]), s: new Set([1]), b: new Uint8Array([1, 2]) },
    ],
    ['a sparse array', [1, , 3]], // eslint-disable-line no-sparse-arrays
    [
      'a class instance',
      new (class Point {
        x = 1
        y = 2
      })(),
    ],
    ['a top-level primitive', 'text'],
  ]
  it.each(cases)('copies %s exactly as structuredClone does', (_name, value) => {
    const copy = cloneValue(value)
    expect(copy).toStrictEqual(structuredClone(value))
    if (typeof value === 'object' && value !== null) expect(copy).not.toBe(value)
  })

  it('keeps shared references shared and cycles cyclic', () => {
    const copy = cloneValue({ left: shared, right: shared })
    expect(copy.left).toBe(copy.right)
    expect(copy.left).not.toBe(shared)
    const loop = cloneValue(cyclic)
    expect(loop.self).toBe(loop)
  })

  it('reads each getter once and keeps an own __proto__ key as data', () => {
    let reads = 0
    const value = {
      get now() {
        return ++reads
      },
    }
    const copy = cloneValue(value)
    expect(reads).toBe(1)
    expect(Object.getOwnPropertyDescriptor(copy, 'now')).toMatchObject({ value: 1, writable: true })
    const tricky = JSON.parse('{"__proto__": {"polluted": true}, "x": 1}') as Record<string, unknown>
    const clone = cloneValue(tricky)
    expect(Object.getPrototypeOf(clone)).toBe(Object.prototype)
    expect(Object.hasOwn(clone, '__proto__')).toBe(true)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('ignores symbol keys, and throws DataCloneError for functions like structuredClone', () => {
    expect(cloneValue({ [Symbol('s')]: 1, a: 2 })).toEqual({ a: 2 })
    expect(() => cloneValue({ f: () => 1 })).toThrow(expect.objectContaining({ name: 'DataCloneError' }))
    expect(() => cloneValue(() => 1)).toThrow(expect.objectContaining({ name: 'DataCloneError' }))
  })
})
