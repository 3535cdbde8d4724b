// GET /pull on the real server: pages read in parts of 250 changes (other users'
// queries run in between),
// with the same answer as one read, and a compaction between two chunks noticed.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { PullReply } from '@changecast/core/protocol'
import { createSyncHandler, insecureNoAuth, type Database, type SyncHandler } from '@changecast/server'
import { realDatabase } from './backends.js'

for (const backend of ['pglite', 'postgres'] as const) {
  describe(`pull (${backend})`, () => {
    let handler: SyncHandler
    let database: Database
    let closeDatabase: () => Promise<void>
    beforeEach(async () => {
      ;({ database, close: closeDatabase } = await realDatabase(backend))
      handler = createSyncHandler({ database, authenticate: insecureNoAuth })
      await handler.ready
      // 250 batches of client a, 20 changes each: 5,000 change rows, read 250 at a time.
      const batches = Array.from({ length: 250 }, (_, i) => ({
        rev: i + 1,
        tx: `a.${i + 1}`,
        at: 1,
        changes: Array.from({ length: 20 }, (_, j) => ({
          type: 'update',
          table: 'todos',
          key: j,
          value: { n: i + 1 },
        })),
      }))
      const push = await handler(
        new Request('http://sync.test/push', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ v: 2, clientId: 'a', batches }),
        }),
      )
      expect(push.status).toBe(200)
    })
    afterEach(async () => {
      await handler.close()
      await closeDatabase()
    })
    const pull = async (query: string) => {
      const response = await handler(new Request(`http://sync.test/pull?v=2&${query}`))
      expect(response.status).toBe(200)
      return (await response.json()) as PullReply & { mustRefetch?: boolean }
    }

    it('a page read in several chunks holds every batch in order, and upTo and more as one read would', async () => {
      const all = await pull('since=0&limit=1000&clientId=b')
      expect(all.batches.map((batch) => batch.rev)).toEqual(Array.from({ length: 250 }, (_, i) => i + 1))
      expect(all).toMatchObject({ upTo: 250, more: false })
      const part = await pull('since=20&limit=150&clientId=b')
      expect(part.batches.map((batch) => batch.rev)).toEqual(Array.from({ length: 150 }, (_, i) => i + 21))
      expect(part).toMatchObject({ upTo: 170, more: true })
      // Its own batches left out, and still brought to the head.
      expect(await pull('since=0&limit=1000&clientId=a')).toMatchObject({ batches: [], upTo: 250, more: false })
    })

    it('a compaction past since between two chunks: mustRefetch, not a page that may lack deletes', async () => {
      const query = database.query.bind(database)
      let compacted = false
      database.query = async (sql: string, params?: readonly unknown[]) => {
        // A later read of the pull below (after the first batches; up to its head, where the
        // fan-out reads the same batches with no upper bound).
        if (!compacted && /select rev, seq/.test(sql) && Number(params?.[0]) > 0 && params?.[2] === 250) {
          compacted = true
          await handler.compact({ upTo: 250 })
        }
        return query(sql, params)
      }
      expect(await pull('since=0&limit=1000&clientId=b')).toMatchObject({ batches: [], mustRefetch: true })
      expect(compacted).toBe(true)
    })
  })
}
