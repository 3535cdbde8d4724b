import { describe, expect, it } from 'vitest'
import {
  backoffDelay,
  checkWireValue,
  decodeWireKey,
  encodeWireKey,
  isRetryable,
  MAX_RETRY_AFTER,
  parseHello,
  parsePullReply,
  parsePushReply,
  parsePushRequest,
  ProtocolViolation,
  readEvents,
  retryAfterMs,
  WireError,
  wireKeyText,
} from '@changecast/core/sync'
import { short } from '@changecast/core/protocol'

const batch = {
  rev: 3,
  tx: 't',
  origin: 'c',
  at: 1,
  changes: [{ type: 'create', table: 'todos', key: 1, value: { id: 1 } }],
}

describe('protocol replies', () => {
  it('accepts a push reply that answers every pushed rev once', () => {
    const reply = {
      epoch: 'e1',
      acked: [{ rev: 1, serverRev: 41 }],
      rejected: [{ rev: 2, reason: 'no', serverRev: 41, current: [{ table: 'todos', key: 1 }] }],
    }
    expect(parsePushReply(reply, [1, 2])).toBe(reply)
    // An ack may name, in current, what the batch left outside the readable scopes.
    const hidden = {
      epoch: 'e1',
      acked: [{ rev: 1, serverRev: 41, current: [{ table: 'todos', key: 1 }] }],
      rejected: [],
    }
    expect(parsePushReply(hidden, [1])).toBe(hidden)
  })

  const badPush: Array<[string, unknown, RegExp]> = [
    ['not an object', 'ok', /not an object/],
    ['no epoch', { acked: [], rejected: [] }, /epoch/],
    ['acked not a list', { epoch: 'e', acked: 1, rejected: [] }, /acked must be a list/],
    [
      'an ack without serverRev',
      { epoch: 'e', acked: [{ rev: 1 }, { rev: 2, serverRev: 2 }], rejected: [] },
      /acked\[0\]\.serverRev must be a revision/,
    ],
    [
      'a rev listed twice',
      {
        epoch: 'e',
        acked: [
          { rev: 1, serverRev: 1 },
          { rev: 1, serverRev: 2 },
        ],
        rejected: [],
      },
      /answered twice/,
    ],
    [
      'a rev acked and rejected',
      { epoch: 'e', acked: [{ rev: 1, serverRev: 1 }], rejected: [{ rev: 1, reason: 'x', serverRev: 1, current: [] }] },
      /answered twice/,
    ],
    ['an unknown rev', { epoch: 'e', acked: [{ rev: 9, serverRev: 1 }], rejected: [] }, /rev 9 was not pushed/],
    [
      'a rejection without a reason',
      { epoch: 'e', acked: [], rejected: [{ rev: 1, serverRev: 1, current: [] }] },
      /rejected\[0\]\.reason must be a string/,
    ],
    [
      'a current value with a bad key',
      { epoch: 'e', acked: [], rejected: [{ rev: 1, reason: 'x', serverRev: 1, current: [{ table: 't', key: {} }] }] },
      /invalid key/,
    ],
    [
      'an ack whose current is not a list',
      {
        epoch: 'e',
        acked: [
          { rev: 1, serverRev: 1, current: {} },
          { rev: 2, serverRev: 2 },
        ],
        rejected: [],
      },
      /acked\[0\]\.current must be a list/,
    ],
    [
      "an ack's current entity with a bad key",
      {
        epoch: 'e',
        acked: [
          { rev: 1, serverRev: 1, current: [{ table: 't', key: { no: 1 } }] },
          { rev: 2, serverRev: 2 },
        ],
        rejected: [],
      },
      /invalid key/,
    ],
    [
      "an ack's current entity without a table",
      {
        epoch: 'e',
        acked: [
          { rev: 1, serverRev: 1, current: [{ key: 1 }] },
          { rev: 2, serverRev: 2 },
        ],
        rejected: [],
      },
      /rev 1: current\[0\]\.table must be a non-empty string/,
    ],
    [
      'a pushed rev left unanswered',
      { epoch: 'e', acked: [{ rev: 1, serverRev: 1 }], rejected: [] },
      /revs 2 were neither acked nor rejected/,
    ],
  ]
  it.each(badPush)('rejects a push reply with %s', (_name, body, message) => {
    expect(() => parsePushReply(body, [1, 2])).toThrow(ProtocolViolation)
    expect(() => parsePushReply(body, [1, 2])).toThrow(message)
  })

  it('accepts a pull reply, and rejects a malformed one', () => {
    expect(parsePullReply({ epoch: 'e', batches: [batch], upTo: 3, more: false }).batches).toHaveLength(1)
    expect(() => parsePullReply({ epoch: 'e', batches: [batch], upTo: '3', more: false })).toThrow(/upTo must be/)
    expect(() => parsePullReply({ epoch: 'e', batches: [batch], upTo: 2, more: false })).toThrow(/upTo must be/)
    expect(() => parsePullReply({ epoch: 'e', batches: [{ ...batch, rev: 0 }], upTo: 3, more: false })).toThrow(
      /batch\.rev must be a revision/,
    )
    expect(() => parsePullReply({ epoch: 'e', batches: [batch, { ...batch, rev: 2 }], upTo: 3, more: false })).toThrow(
      /batch 2 comes after batch 3/,
    )
    expect(parseHello({ epoch: 'e', head: 0 })).toEqual({ epoch: 'e', head: 0 })
    expect(() => parseHello({ head: 1 })).toThrow(/epoch/)
  })

  it('validates push requests for servers, with a message per problem', () => {
    const good = { v: 2, clientId: 'c', batches: [{ rev: 1, tx: 't', at: 1, changes: batch.changes }] }
    expect(parsePushRequest(good)).toBe(good)
    expect(() => parsePushRequest({ ...good, v: 1 })).toThrow(/unsupported protocol version 1/)
    expect(() =>
      parsePushRequest({
        ...good,
        batches: [{ ...good.batches[0], changes: [{ type: 'update', table: 'todos', key: 1 }] }],
      }),
    ).toThrow(/change 0 of batch 0: a update has no value/)
  })
})

describe('typed keys', () => {
  const date = new Date('2026-11-28T10:00:00.000Z')
  const bytes = new Uint8Array([0, 1, 255]).buffer
  it.each<[string, unknown, unknown]>([
    ['a number', 42, 42],
    ['a string', 'a', 'a'],
    ['a date', date, { $date: '2026-11-28T10:00:00.000Z' }],
    ['infinity', -Infinity, { $number: '-Infinity' }],
    ['binary', bytes, { $bytes: 'AAH/' }],
    ['a compound key', ['a', date, 1], ['a', { $date: '2026-11-28T10:00:00.000Z' }, 1]],
  ])('round-trips %s through JSON with its type', (_name, key, wire) => {
    expect(encodeWireKey(key)).toEqual(wire)
    const back = decodeWireKey(JSON.parse(JSON.stringify(encodeWireKey(key))))
    expect(back).toEqual(key)
  })

  it('refuses what is not a key', () => {
    for (const bad of [NaN, {}, { $date: 'yesterday' }, { $date: 'x', extra: 1 }, null, true]) {
      expect(() => decodeWireKey(bad)).toThrow(WireError)
    }
    expect(() => encodeWireKey(new Date(NaN))).toThrow(WireError)
  })

  it('gives one canonical text per key, for servers', () => {
    expect(wireKeyText({ $date: '2026-11-28T10:00:00Z' })).toBe(wireKeyText({ $date: '2026-11-28T10:00:00.000Z' }))
    expect(wireKeyText(1.0)).toBe(wireKeyText(1))
  })
})

describe('wire values', () => {
  it('refuses what JSON would lose, naming the path', () => {
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    const cases: Array<[unknown, RegExp]> = [
      [{ n: 10n }, /value.n is a bigint/],
      [cyclic, /value.self refers back to itself/],
      [{ m: new Map() }, /value.m is a Map/],
      [{ x: [1, NaN] }, /value.x.1 is NaN/],
      [{ b: new Uint8Array(2) }, /Uint8Array/],
    ]
    for (const [value, message] of cases) expect(() => checkWireValue(value)).toThrow(message)
    let deep: unknown = 1
    for (let i = 0; i < 70; i++) deep = [deep]
    expect(() => checkWireValue(deep)).toThrow(/nested deeper than 64/)
    expect(() => checkWireValue({ when: new Date(), list: [1, 'a', null, { ok: true }] })).not.toThrow()
  })

  it('short(): JSON of a small value; a hostile one (thousands deep, millions wide) is cut, never serialised whole', () => {
    expect([short({}), short([]), short([1, [2, 'x']]), short({ a: 1, 'b c': null }), short(undefined)]).toEqual([
      '{}',
      '[]',
      '[1,[2,"x"]]',
      '{"a":1,"b c":null}',
      'undefined',
    ])
    let deep: unknown[] = []
    const top = deep
    for (let i = 0; i < 10_000; i++) deep = deep[0] = []
    expect(short(top)).toBe(`${'['.repeat(60)}…`)
    // Index by index: the elements past the cut are never read.
    const wide = new Proxy(
      Array.from({ length: 100_000 }, (_, i) => i),
      {
        get: (target, key, receiver) => {
          if (typeof key === 'string' && Number(key) > 40) throw new Error(`read element ${key}`)
          return Reflect.get(target, key, receiver) as unknown
        },
      },
    )
    expect(short(wide)).toMatch(/^\[0,1,2,.*…$/)
    expect(short('x'.repeat(1e6))).toHaveLength(61)
  })
})

describe('backoff', () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    expect([1, 2, 3, 4].map((attempt) => backoffDelay(attempt, { base: 100, cap: 500 }, () => 1))).toEqual([
      100, 200, 400, 500,
    ])
    expect(backoffDelay(3000, {}, () => 1)).toBe(60_000)
    expect(backoffDelay(3, { base: 100 }, () => 0)).toBe(0)
  })

  it('reads Retry-After as seconds or a date, capped at an hour', () => {
    expect(retryAfterMs('2')).toBe(2000)
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000)
    expect(retryAfterMs('99999999')).toBe(MAX_RETRY_AFTER)
    expect(retryAfterMs('soon')).toBeUndefined()
    expect(retryAfterMs(null)).toBeUndefined()
  })

  it.each([
    [408, true],
    [429, true],
    [500, true],
    [503, true],
    [400, false],
    [401, false],
    [409, false],
  ])('status %i retryable: %s', (status, expected) => {
    expect(isRetryable(status)).toBe(expected)
  })
})

const body = (chunks: Array<string | Uint8Array>) => {
  const encoder = new TextEncoder()
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(typeof chunk === 'string' ? encoder.encode(chunk) : chunk)
      controller.close()
    },
  })
}
const collect = async (stream: ReadableStream<Uint8Array>, options?: Parameters<typeof readEvents>[1]) => {
  const events = []
  for await (const event of readEvents(stream, options)) events.push(event)
  return events
}

describe('Server-Sent Events', () => {
  it('parses events split across chunks, with comments, multi-line data and CRLF', async () => {
    const events = await collect(
      body([
        ': hello\r\nevent: batch\r\nid: 1\r\nda',
        'ta: {"a":1}\r\n\r\ndata: line one\ndata: line two\n',
        '\nevent: poke\ndata: x\n\n',
      ]),
    )
    expect(events).toEqual([
      { event: 'batch', data: '{"a":1}', id: '1' },
      { event: 'message', data: 'line one\nline two', id: '1' },
      { event: 'poke', data: 'x', id: '1' },
    ])
  })

  it('regression: a CR ending one chunk and an LF starting the next are one line end, not an empty line', async () => {
    const events = await collect(body(['event: batch\r', '\ndata: {"rev":1}\r', '\n', 'data: {"more":2}\r', '\n\r\n']))
    expect(events).toEqual([{ event: 'batch', data: '{"rev":1}\n{"more":2}' }])
  })

  it('regression: an event over the size limit is refused instead of growing without end', async () => {
    await expect(collect(body(['data: ', 'x'.repeat(2000), '\n\n']), { maxBytes: 1000 })).rejects.toThrow(
      /over the 1000-byte limit/,
    )
  })

  for (const [megabytes, chunk] of [
    [15, 64 * 1024],
    [4, 256],
  ] as const) {
    it(`regression: parses a ${megabytes} MB event delivered in ${chunk}-byte chunks (linear, not quadratic: a line's pieces are joined once)`, async () => {
      const size = megabytes * 1024 * 1024
      const text = `event: batch\ndata: ${'y'.repeat(size)}\n\n`
      const bytes = new TextEncoder().encode(text)
      const chunks: Uint8Array[] = []
      for (let i = 0; i < bytes.length; i += chunk) chunks.push(bytes.subarray(i, i + chunk))
      const events = await collect(body(chunks))
      expect(events).toHaveLength(1)
      expect(events[0]!.data.length).toBe(size)
    }, 180_000)
  }

  it('a line split over many chunks, with a CR at a chunk end, is one line', async () => {
    const events = await collect(body(['ev', 'ent: ba', 'tch\r', '\nda', 't', 'a: {"r', 'ev":1}\r', '\n\r', '\n']))
    expect(events).toEqual([{ event: 'batch', data: '{"rev":1}' }])
  })

  it('calls onChunk for every chunk, heartbeats included', async () => {
    let chunks = 0
    await collect(body([': ping\n\n', ': ping\n\n', 'data: x\n\n']), { onChunk: () => chunks++ })
    expect(chunks).toBe(3)
  })
})
