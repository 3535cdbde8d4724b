import { describe, expect, it } from 'vitest'
import { backoffDelay, isRetryable, retryAfterMs } from '../src/sync/backoff.js'
import { parsePullReply, parsePushReply, parseRemoteBatch, ProtocolViolation } from '../src/sync/protocol.js'
import { readEvents } from '../src/sync/sse.js'

const batch = {
  rev: 3,
  tx: 't',
  origin: 'c',
  at: 1,
  changes: [{ type: 'create', table: 'todos', key: 1, value: { id: 1 } }],
}

describe('protocol replies', () => {
  it('accepts a push reply that answers every pushed rev', () => {
    const reply = {
      acked: [1],
      rejected: [{ rev: 2, reason: 'no', current: [{ table: 'todos', key: 1 }] }],
      cursor: '9',
    }
    expect(parsePushReply(reply, [1, 2])).toBe(reply)
  })

  const badPush: Array<[string, unknown, RegExp]> = [
    ['not an object', 'ok', /not a JSON object/],
    ['acked not a list', { acked: 1, rejected: [] }, /acked must be a list/],
    ['rejection without a reason', { acked: [], rejected: [{ rev: 1 }] }, /no reason/],
    [
      'current without a key',
      { acked: [], rejected: [{ rev: 1, reason: 'x', current: [{ table: 't' }] }] },
      /no table or key/,
    ],
    ['a pushed rev left unanswered', { acked: [1], rejected: [] }, /revs 2 were neither acked nor rejected/],
    ['a cursor that is not a string', { acked: [1, 2], rejected: [], cursor: 3 }, /cursor/],
  ]
  it.each(badPush)('rejects a push reply with %s', (_name, body, message) => {
    expect(() => parsePushReply(body, [1, 2])).toThrow(ProtocolViolation)
    expect(() => parsePushReply(body, [1, 2])).toThrow(message)
  })

  it('accepts a pull reply, and rejects malformed batches in it', () => {
    expect(parsePullReply({ batches: [batch], cursor: '3', more: false }).batches).toHaveLength(1)
    expect(() => parsePullReply({ batches: [batch], cursor: 3, more: false })).toThrow(/cursor must be a string/)
    expect(() => parsePullReply({ batches: [{ ...batch, rev: 0 }], cursor: '3', more: false })).toThrow(/no rev/)
    expect(() => parseRemoteBatch({ ...batch, changes: [{ type: 'update', table: 'todos', key: 1 }] })).toThrow(
      /update has no value/,
    )
    expect(() => parseRemoteBatch({ ...batch, changes: [{ type: 'delete', table: 'todos', key: {} }] })).toThrow(
      /invalid key/,
    )
  })
})

describe('backoff', () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    expect([1, 2, 3, 4].map((attempt) => backoffDelay(attempt, { base: 100, cap: 500 }, () => 1))).toEqual([
      100, 200, 400, 500,
    ])
    expect(backoffDelay(30, {}, () => 1)).toBe(60_000)
    expect(backoffDelay(3, { base: 100 }, () => 0)).toBe(0)
  })

  it('reads Retry-After as seconds or a date', () => {
    expect(retryAfterMs('2')).toBe(2000)
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000)
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

describe('Server-Sent Events', () => {
  it('parses events split across chunks, with comments, multi-line data and CRLF', async () => {
    const chunks = [
      ': hello\r\nevent: batch\r\nid: 1\r\nda',
      'ta: {"a":1}\r\n\r\ndata: line one\ndata: line two\n',
      '\nevent: poke\ndata: x\n\n',
    ]
    const encoder = new TextEncoder()
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(encoder.encode(chunk))
        controller.close()
      },
    })
    const events = []
    for await (const event of readEvents(body)) events.push(event)
    expect(events).toEqual([
      { event: 'batch', data: '{"a":1}', id: '1' },
      { event: 'message', data: 'line one\nline two', id: '1' },
      { event: 'poke', data: 'x', id: '1' },
    ])
  })
})
