import { describe, expect, it } from 'vitest'
import { toChangeEvents, type WriteRecord } from '../src/capture/to-change-events.js'

const stamp = { tx: 'o.1', origin: 'o', source: 'local' as const, at: 5 }
const base = { table: 't', keepPrevious: true }
const short = (write: WriteRecord) =>
  toChangeEvents(write, stamp).map((e) => [e.type, e.key, e.value, e.previous, e.changes])

describe('toChangeEvents', () => {
  const cases: Array<[string, WriteRecord, unknown[]]> = [
    [
      'add → create per item',
      { ...base, op: 'add', keys: [1, 2], values: [{ a: 1 }, { a: 2 }] },
      [
        ['create', 1, { a: 1 }, undefined, undefined],
        ['create', 2, { a: 2 }, undefined, undefined],
      ],
    ],
    [
      'add skips failed items',
      { ...base, op: 'add', keys: [1, undefined], values: [{ a: 1 }, { a: 2 }], failures: { 1: new Error('dup') } },
      [['create', 1, { a: 1 }, undefined, undefined]],
    ],
    [
      'put of a new key → create',
      { ...base, op: 'put', keys: [1], values: [{ a: 1 }], previous: [undefined] },
      [['create', 1, { a: 1 }, undefined, undefined]],
    ],
    [
      'put of an existing key → update with changes',
      { ...base, op: 'put', keys: [1], values: [{ a: 2 }], previous: [{ a: 1 }] },
      [['update', 1, { a: 2 }, { a: 1 }, { a: 2 }]],
    ],
    [
      'put that changes nothing → nothing',
      { ...base, op: 'put', keys: [1], values: [{ a: 1 }], previous: [{ a: 1 }] },
      [],
    ],
    [
      'put repeating a key → create then update',
      { ...base, op: 'put', keys: [1, 1], values: [{ a: 1 }, { a: 2 }], previous: [undefined, undefined] },
      [
        ['create', 1, { a: 1 }, undefined, undefined],
        ['update', 1, { a: 2 }, { a: 1 }, { a: 2 }],
      ],
    ],
    [
      'delete of an existing key → delete with previous',
      { ...base, op: 'delete', keys: [1, 2], previous: [{ a: 1 }, undefined] },
      [['delete', 1, undefined, { a: 1 }, undefined]],
    ],
    [
      'delete repeating a key → one delete',
      { ...base, op: 'delete', keys: [1, 1], previous: [{ a: 1 }, { a: 1 }] },
      [['delete', 1, undefined, { a: 1 }, undefined]],
    ],
    [
      'previous left out when not kept',
      { ...base, keepPrevious: false, op: 'put', keys: [1], values: [{ a: 2 }], previous: [{ a: 1 }] },
      [['update', 1, { a: 2 }, undefined, { a: 2 }]],
    ],
    [
      'compound keys repeated by value',
      {
        ...base,
        op: 'put',
        keys: [
          ['x', 1],
          ['x', 1],
        ],
        values: [{ v: 1 }, { v: 2 }],
        previous: [undefined, undefined],
      },
      [
        ['create', ['x', 1], { v: 1 }, undefined, undefined],
        ['update', ['x', 1], { v: 2 }, { v: 1 }, { v: 2 }],
      ],
    ],
  ]

  it.each(cases)('%s', (_name, write, expected) => {
    expect(short(write)).toEqual(expected)
  })

  it('stamps every event with the transaction, origin, source and time', () => {
    const [event] = toChangeEvents({ ...base, op: 'add', keys: [1], values: [{}] }, stamp)
    expect(event).toMatchObject({ table: 't', tx: 'o.1', origin: 'o', source: 'local', at: 5 })
  })
})
