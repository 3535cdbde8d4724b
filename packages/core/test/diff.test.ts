import { describe, expect, it } from 'vitest'
import { diff } from '../src/capture/diff.js'

describe('diff', () => {
  const cases: Array<[string, unknown, unknown, Record<string, unknown> | undefined]> = [
    ['equal objects', { a: 1, b: 'x' }, { a: 1, b: 'x' }, undefined],
    ['changed field', { a: 1 }, { a: 2 }, { a: 2 }],
    ['added field', { a: 1 }, { a: 1, b: 2 }, { b: 2 }],
    ['removed field', { a: 1, b: 2 }, { a: 1 }, { b: undefined }],
    ['nested field by dotted path', { m: { p: 1, q: 1 } }, { m: { p: 2, q: 1 } }, { 'm.p': 2 }],
    ['object replaced by a primitive', { m: { p: 1 } }, { m: 3 }, { m: 3 }],
    ['arrays compared by content', { t: ['a', 'b'] }, { t: ['a', 'b'] }, undefined],
    ['array reported whole', { t: ['a'] }, { t: ['a', 'b'] }, { t: ['a', 'b'] }],
    ['dates by time', { d: new Date(1) }, { d: new Date(1) }, undefined],
    ['changed date', { d: new Date(1) }, { d: new Date(2) }, { d: new Date(2) }],
    ['binary by bytes', { b: new Uint8Array([1, 2]) }, { b: new Uint8Array([1, 2]) }, undefined],
    ['changed binary', { b: new Uint8Array([1, 2]) }, { b: new Uint8Array([1, 3]) }, { b: new Uint8Array([1, 3]) }],
    ['maps by entries', { m: new Map([[1, { x: 1 }]]) }, { m: new Map([[1, { x: 1 }]]) }, undefined],
    ['NaN equals NaN', { n: NaN }, { n: NaN }, undefined],
    ['primitive values', 'a', 'b', { '': 'b' }],
  ]
  it.each(cases)('%s', (_name, before, after, expected) => {
    expect(diff(before, after)).toEqual(expected)
  })
})

describe('the changes object', () => {
  it('is a plain object (prints and compares like one), even with a changed __proto__ field', () => {
    const before = JSON.parse('{"a":1,"__proto__":{"x":1}}') as object
    const after = JSON.parse('{"a":2,"__proto__":{"x":2}}') as object
    const changes = diff(before, after)!
    expect(Object.getPrototypeOf(changes)).toBe(Object.prototype)
    expect(Object.keys(changes)).toEqual(['a', '__proto__.x'])
    const top = diff(JSON.parse('{"__proto__":1}'), JSON.parse('{"__proto__":2}'))!
    expect(Object.getPrototypeOf(top)).toBe(Object.prototype)
    expect(Object.getOwnPropertyDescriptor(top, '__proto__')?.value).toBe(2)
  })
})
