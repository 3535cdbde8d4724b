// Merged updates (docs/protocol.md, "Merging updates") on @changecast/server's own options:
// a table's schema sees the merged value, and a table may replace instead of merging.
import type { StandardSchemaV1 } from '@standard-schema/spec'
import { afterEach, describe, expect, it } from 'vitest'
import type { PushReply } from '@changecast/core/protocol'
import { createSyncHandler, insecureNoAuth, type SyncHandler } from '@changecast/server'
import { realDatabase } from './backends.js'

/** A Standard Schema: a card whose `votes` is at most 10. */
const atMostTen: StandardSchemaV1<unknown> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: (value) => {
      const votes = (value as { votes?: unknown }).votes
      return typeof votes === 'number' && votes > 10
        ? { issues: [{ message: 'at most 10', path: ['votes'] }] }
        : { value }
    },
  },
}

for (const backend of ['pglite', 'postgres'] as const) {
  describe(`merged updates and table rules (${backend})`, () => {
    let handler: SyncHandler
    let close: () => Promise<void>
    afterEach(async () => {
      await handler.close()
      await close()
    })
    const start = async (tables: Parameters<typeof createSyncHandler>[0]['tables']) => {
      const real = await realDatabase(backend)
      close = real.close
      handler = createSyncHandler({ database: real.database, authenticate: insecureNoAuth, tables })
      await handler.ready
    }
    const push = async (clientId: string, rev: number, changes: unknown[]) => {
      const response = await handler(
        new Request('http://sync.test/push', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ v: 2, clientId, batches: [{ rev, tx: `${clientId}.${rev}`, at: 1, changes }] }),
        }),
      )
      expect(response.status).toBe(200)
      return (await response.json()) as PushReply
    }
    const plus = (votes: number, add: number) => ({
      type: 'update',
      table: 'cards',
      key: 1,
      value: { id: 1, votes },
      patch: [],
      ops: { votes: { add } },
    })

    it("validates the merged value with the table's schema: two increments that each pass, but not together", async () => {
      await start({ cards: { schema: atMostTen } })
      await handler.write([{ type: 'create', table: 'cards', key: 1, value: { id: 1, votes: 5 } }])
      // Each client saw 5 and adds 4: each value it sent (9) passes; the second merge makes 13.
      expect((await push('a', 1, [plus(9, 4)])).acked).toHaveLength(1)
      const second = await push('b', 1, [plus(9, 4)])
      expect(second.rejected).toEqual([
        expect.objectContaining({
          rev: 1,
          code: 'invalid',
          current: [{ table: 'cards', key: 1, value: { id: 1, votes: 9 } }],
        }),
      ])
      expect(second.rejected[0]!.reason).toMatch(/votes: at most 10/)
      expect(await handler.read('cards', 1)).toEqual({ id: 1, votes: 9 })
    })

    it("`merge: 'replace'`: a table's updates replace the whole value even when sent as patches", async () => {
      await start({ cards: { merge: 'replace' }, notes: {} })
      await handler.write([
        { type: 'create', table: 'cards', key: 1, value: { id: 1, votes: 5, title: 'server' } },
        { type: 'create', table: 'notes', key: 1, value: { id: 1, votes: 5, title: 'server' } },
      ])
      const reply = await push('a', 1, [plus(6, 1), { ...plus(6, 1), table: 'notes' }])
      expect(reply.acked).toEqual([
        { rev: 1, serverRev: 2, current: [{ table: 'notes', key: 1, value: { id: 1, votes: 6, title: 'server' } }] },
      ])
      expect(await handler.read('cards', 1)).toEqual({ id: 1, votes: 6 })
      expect(await handler.read('notes', 1)).toEqual({ id: 1, votes: 6, title: 'server' })
    })
  })
}
