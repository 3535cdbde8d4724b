import { describe, expect, it } from 'vitest'
import { receivedBatch, validateEnvelope } from '../src/transport/envelope.js'

const event = {
  type: 'create',
  table: 'todos',
  key: 1,
  value: { id: 1 },
  source: 'local',
  origin: 'a',
  tx: 'a.1',
  at: 1,
}
const batch = { tx: 'a.1', origin: 'a', source: 'local', at: 1, rev: 3, events: [event] }
const good = { v: 1, origin: 'a', seq: 1, batch }
const isTable = (name: string) => name === 'todos'

describe('validateEnvelope', () => {
  it('accepts a well-formed batch envelope and a notice', () => {
    expect(validateEnvelope(good, isTable)).toBe(good)
    // A remote batch relayed by a tab keeps the origin of the remote client.
    const relayed = { ...good, batch: { ...batch, source: 'remote', origin: 'another-client' } }
    expect(validateEnvelope(relayed, isTable)).toBe(relayed)
    const notice = { v: 1, origin: 'a', seq: 2, notice: { tx: 'a.2', rev: 4 } }
    expect(validateEnvelope(notice, isTable)).toBe(notice)
  })

  const bad: Array<[string, unknown, RegExp]> = [
    ['not an object', 'hello', /not an object/],
    ['null', null, /not an object/],
    ['a foreign version', { ...good, v: 2 }, /unsupported version 2/],
    ['no version', { origin: 'a', seq: 1, batch }, /unsupported version undefined/],
    ['no origin', { ...good, origin: '' }, /missing origin/],
    ['seq zero', { ...good, seq: 0 }, /seq must be a positive integer/],
    ['seq not an integer', { ...good, seq: 1.5 }, /seq/],
    ['no batch', { v: 1, origin: 'a', seq: 1 }, /malformed batch: missing/],
    ['batch from another origin', { ...good, batch: { ...batch, origin: 'b' } }, /origin differs/],
    ['batch with source tab', { ...good, batch: { ...batch, source: 'tab' } }, /source/],
    [
      'remote batch without an origin',
      { ...good, batch: { ...batch, source: 'remote', origin: 3 } },
      /origin must be a string/,
    ],
    ['batch without events', { ...good, batch: { ...batch, events: [] } }, /non-empty array/],
    ['negative rev', { ...good, batch: { ...batch, rev: -1 } }, /rev/],
    [
      'event of unknown type',
      { ...good, batch: { ...batch, events: [{ ...event, type: 'created' }] } },
      /event 0: unknown type/,
    ],
    ['event without table', { ...good, batch: { ...batch, events: [{ ...event, table: 1 }] } }, /missing table/],
    [
      'event with an invalid key',
      { ...good, batch: { ...batch, events: [{ ...event, key: { id: 1 } }] } },
      /invalid key/,
    ],
    ['event with non-object changes', { ...good, batch: { ...batch, events: [{ ...event, changes: 3 }] } }, /changes/],
    ['malformed notice', { v: 1, origin: 'a', seq: 1, notice: { rev: 1 } }, /malformed notice/],
    [
      "an event for the bus's wildcard table '*'",
      { ...good, batch: { ...batch, events: [{ ...event, table: '*' }] } },
      /table "\*" is not captured here/,
    ],
    [
      'an event for a table that is not declared',
      { ...good, batch: { ...batch, events: [{ ...event, table: 'nope' }] } },
      /not captured here/,
    ],
    ['a log id that is not a string', { ...good, log: 5 }, /log must be a string/],
  ]
  it.each(bad)('rejects %s with a reason', (_name, data, reason) => {
    const result = validateEnvelope(data, isTable)
    expect(typeof result).toBe('string')
    expect(result).toMatch(reason)
  })
})

describe('receivedBatch', () => {
  it('marks local batches of another context as tab, and keeps remote ones remote', () => {
    const tab = receivedBatch(batch as never)
    expect(tab.source).toBe('tab')
    expect(tab.events[0]!.source).toBe('tab')
    const remote = receivedBatch({ ...batch, source: 'remote', events: [{ ...event, source: 'remote' }] } as never)
    expect(remote.source).toBe('remote')
  })
})
