import { describe, expect, it, vi } from 'vitest'
import type { ChangeBatch } from '@changecast/core'
import { classifyRev, classifySeq, Sequencer, wasCompacted, type RangeRead } from '../src/transport/sequencer.js'

const batch = (rev: number, source: ChangeBatch['source'] = 'tab'): ChangeBatch => ({
  tx: `t${rev}`,
  origin: 'o',
  source,
  at: 0,
  rev,
  events: [],
})

describe('classifyRev', () => {
  it.each([
    [0, 1, 'deliver'],
    [5, 6, 'deliver'],
    [5, 5, 'duplicate'],
    [5, 2, 'duplicate'],
    [5, 7, 'gap'],
  ] as const)('last %i, rev %i → %s', (last, rev, verdict) => {
    expect(classifyRev(last, rev)).toBe(verdict)
  })
})

describe('classifySeq', () => {
  it('starts counting at the first message of an origin, reports skips, and follows the sender', () => {
    const seen = new Map<string, number>()
    expect(classifySeq(seen, 'a', 7)).toBe('deliver')
    expect(classifySeq(seen, 'a', 8)).toBe('deliver')
    expect(classifySeq(seen, 'b', 1)).toBe('deliver')
    expect(classifySeq(seen, 'a', 11)).toBe('gap')
    expect(classifySeq(seen, 'a', 12)).toBe('deliver')
    // A number far ahead (forged) is a gap, and the real sender's next one is still heard.
    expect(classifySeq(seen, 'a', 1e15)).toBe('gap')
    expect(classifySeq(seen, 'a', 13)).toBe('gap')
    expect(classifySeq(seen, 'a', 14)).toBe('deliver')
  })
})

describe('wasCompacted', () => {
  it('is true only when revs right after the last delivered one are gone', () => {
    expect(wasCompacted(5, 0)).toBe(false)
    expect(wasCompacted(5, 6)).toBe(false)
    expect(wasCompacted(5, 3)).toBe(false)
    expect(wasCompacted(5, 8)).toBe(true)
  })
})

describe('Sequencer', () => {
  function make(log: ChangeBatch[], oldest = 1, unlogged?: Map<number, number>) {
    const delivered: number[] = []
    const lost: Array<number | [number, string]> = []
    const batches: ChangeBatch[] = []
    const reads: number[] = []
    const readRange = vi.fn(async (after: number): Promise<RangeRead> => {
      reads.push(after)
      await Promise.resolve()
      return { batches: log.filter((b) => b.rev! > after), oldest, unlogged }
    })
    const sequencer = new Sequencer(
      (b) => {
        delivered.push(b.rev!)
        batches.push(b)
      },
      readRange,
      (after, reason) => lost.push(reason === 'log-compacted' ? after : [after, reason]),
      (error) => {
        throw error
      },
    )
    return { sequencer, delivered, lost, reads, batches }
  }

  it('delivers nothing before the baseline, then in rev order, each once', async () => {
    const { sequencer, delivered, reads } = make([])
    sequencer.offer(batch(12))
    sequencer.offer(batch(11))
    expect(delivered).toEqual([])
    sequencer.start(10)
    expect(delivered).toEqual([11, 12])
    sequencer.offer(batch(12))
    sequencer.offer(batch(9))
    expect(delivered).toEqual([11, 12])
    expect(reads).toEqual([])
    await Promise.resolve()
  })

  it('passes a rev its own commit deleted again without reading the changelog, and never skips past one that waits', async () => {
    const { sequencer, delivered, reads } = make([batch(3)])
    sequencer.start(1)
    sequencer.skip(2)
    sequencer.offer(batch(3, 'local'))
    expect(delivered).toEqual([3])
    // A skip ahead of what was delivered waits its turn like a batch: 5 is still read for.
    sequencer.skip(6)
    sequencer.offer(batch(7, 'local'))
    expect(delivered).toEqual([3])
    await vi.waitFor(() => expect(reads).toEqual([3]))
    expect(sequencer.rev).toBe(3)
  })

  it('reads a gap from the changelog before delivering what follows it', async () => {
    const { sequencer, delivered, reads } = make([batch(2), batch(3), batch(4)])
    sequencer.start(1)
    sequencer.offer(batch(5))
    expect(delivered).toEqual([])
    await vi.waitFor(() => expect(delivered).toEqual([2, 3, 4]))
    expect(reads).toEqual([1])
    // 5 is not in the changelog: never delivered, never skipped to.
    expect(sequencer.rev).toBe(4)
    sequencer.offer(batch(3))
    expect(delivered).toEqual([2, 3, 4])
  })

  it('treats revs missing inside the changelog as aborted, and a compacted prefix as lost', async () => {
    const aborted = make([batch(3), batch(5)], 1)
    aborted.sequencer.start(1)
    aborted.sequencer.offer(batch(5))
    await vi.waitFor(() => expect(aborted.delivered).toEqual([3, 5]))
    expect(aborted.lost).toEqual([])

    const compacted = make([batch(8), batch(9)], 8)
    compacted.sequencer.start(1)
    compacted.sequencer.offer(batch(9))
    await vi.waitFor(() => expect(compacted.delivered).toEqual([8, 9]))
    expect(compacted.lost).toEqual([1])
  })

  it('replays a row recorded without its changes as the batch heard for it, or else as lost (server-snapshot)', async () => {
    const page = (events: number): ChangeBatch => ({
      ...batch(3, 'remote'),
      events: Array.from({ length: events }, (_, i) => ({ type: 'create', table: 't', key: i }) as never),
    })
    // The row of rev 3 stands for 2 changes; the batch heard for it (its own commit) has them.
    const heard = make([batch(2), { ...page(0), events: [] }], 1, new Map([[3, 2]]))
    heard.sequencer.start(1)
    heard.sequencer.offer(page(2))
    await vi.waitFor(() => expect(heard.delivered).toEqual([2, 3]))
    expect(heard.batches[1]!.events).toHaveLength(2)
    expect(heard.lost).toEqual([])

    // Nothing heard for it (or something that the row does not confirm): the context reloads, once.
    const missed = make(
      [batch(2), page(0), { ...page(0), rev: 4, tx: 't4' }],
      1,
      new Map([
        [3, 2],
        [4, 1],
      ]),
    )
    missed.sequencer.start(1)
    missed.sequencer.offer({ ...page(5), rev: 5 })
    missed.sequencer.offer(page(1))
    await vi.waitFor(() => expect(missed.delivered).toEqual([2, 3, 4]))
    expect(missed.batches[1]!.events).toEqual([])
    expect(missed.lost).toEqual([[1, 'server-snapshot']])
  })

  it('never takes a message at its word: a rev the changelog does not hold is dropped, not skipped to', async () => {
    const { sequencer, delivered, reads } = make([batch(2)])
    sequencer.start(1)
    sequencer.offer(batch(1e15))
    await vi.waitFor(() => expect(reads).toEqual([1]))
    await vi.waitFor(() => expect(delivered).toEqual([2]))
    expect(sequencer.rev).toBe(2)
    sequencer.offer(batch(3))
    expect(delivered).toEqual([2, 3])
  })

  it('starts over from a new baseline on reset, dropping what waited', () => {
    const { sequencer, delivered } = make([])
    sequencer.start(40)
    sequencer.reset(2)
    sequencer.offer(batch(3))
    expect(delivered).toEqual([3])
  })

  it('catches up on everything after the last delivered rev', async () => {
    const { sequencer, delivered } = make([batch(1), batch(2), batch(3)])
    sequencer.start(1)
    await sequencer.catchUp()
    expect(delivered).toEqual([2, 3])
    expect(sequencer.rev).toBe(3)
  })

  it('takes a local commit before the baseline (a schema upgrade) as the baseline', () => {
    const { sequencer, delivered } = make([])
    sequencer.offer(batch(4, 'local'))
    expect(delivered).toEqual([4])
    sequencer.start(4)
    expect(sequencer.rev).toBe(4)
  })
})
