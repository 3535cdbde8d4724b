// store/log.ts: reading the log in parts of a bounded number of change rows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSyncHandler, insecureNoAuth, openPGlite, type Database, type SyncHandler } from '@changecast/server'
import { names } from '../src/names.js'
import { readAfter } from '../src/store/log.js'

describe('readAfter', () => {
  let database: Database
  let sync: SyncHandler
  const t = names()
  beforeAll(async () => {
    database = await openPGlite()
    sync = createSyncHandler({
      database,
      authenticate: insecureNoAuth,
      scopeOf: ({ value }) => (value as { s: string }).s,
    })
    await sync.ready
    // Revisions 1–3: 2 changes each; 4: 7 changes; 5–6: 1 change each (scope b for 6).
    const batch = (rev: number, count: number, s = 'a') =>
      sync.write(
        Array.from({ length: count }, (_, i) => ({
          type: 'update' as const,
          table: 't',
          key: `${rev}-${i}`,
          value: { s },
        })),
      )
    for (const [rev, count] of [
      [1, 2],
      [2, 2],
      [3, 2],
      [4, 7],
      [5, 1],
    ] as const)
      await batch(rev, count)
    await batch(6, 1, 'b')
  })
  afterAll(async () => {
    await sync.close()
    await database.close()
  })
  const revs = (read: { batches: Array<{ rev: number; changes: unknown[] }> }) =>
    read.batches.map((batch) => [batch.rev, batch.changes.length])

  it('reads whole batches, in order, up to limit', async () => {
    const read = await readAfter(database, t, 0, 3)
    expect(revs(read)).toEqual([
      [1, 2],
      [2, 2],
      [3, 2],
    ])
    expect(read.more).toBe(true)
    expect(revs(await readAfter(database, t, 4, 10))).toEqual([
      [5, 1],
      [6, 1],
    ])
    expect((await readAfter(database, t, 4, 10)).more).toBe(false)
    expect(await readAfter(database, t, 6, 10)).toEqual({ batches: [], more: false })
  })

  it('stops at the first batch boundary past maxRows, and reads a larger batch whole, over several queries', async () => {
    let between = 0
    const read = await readAfter(database, t, 0, 100, { maxRows: 3, between: () => Promise.resolve(void between++) })
    // 3 rows: batch 1 whole, batch 2 begun: batch 1 only.
    expect(revs(read)).toEqual([[1, 2]])
    expect(read.more).toBe(true)
    expect(between).toBe(0)
    // From 3: batch 4 (7 changes) takes three queries of 3 rows; the third also holds batch 5,
    // whole (batch 6 may go on): 4 and 5.
    const large = await readAfter(database, t, 3, 100, { maxRows: 3, between: () => Promise.resolve(void between++) })
    expect(revs(large)).toEqual([
      [4, 7],
      [5, 1],
    ])
    expect(large.more).toBe(true)
    expect(between).toBe(2)
  })

  it('up to upTo, and only the changes of the scopes asked (batches without any left out)', async () => {
    expect(revs(await readAfter(database, t, 0, 100, { upTo: 2 }))).toEqual([
      [1, 2],
      [2, 2],
    ])
    expect(revs(await readAfter(database, t, 0, 100, { scopes: ['b'] }))).toEqual([[6, 1]])
    expect(revs(await readAfter(database, t, 0, 100, { scopes: ['a'], maxRows: 100 }))).toEqual([
      [1, 2],
      [2, 2],
      [3, 2],
      [4, 7],
      [5, 1],
    ])
  })
})
