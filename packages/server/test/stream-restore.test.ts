// Open streams when the log under a running server goes back (the database restored from a
// backup) or is another one (recreated, a new epoch): they end, so that each client
// reconnects and hears the new head or epoch in `hello` (docs/protocol.md, "Epoch and
// resets"). Otherwise a stream stays open and silent while batches it skipped are written again.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { readEvents } from '@changecast/core/sync'
import { createSyncHandler, insecureNoAuth, type Database, type SyncHandler } from '@changecast/server'
import { realDatabase } from './backends.js'

for (const backend of ['pglite', 'postgres'] as const) {
  describe(`streams when the log goes back (${backend})`, () => {
    let handler: SyncHandler
    let database: Database
    let closeDatabase: () => Promise<void>
    beforeEach(async () => {
      ;({ database, close: closeDatabase } = await realDatabase(backend))
      handler = createSyncHandler({ database, authenticate: insecureNoAuth, pollInterval: 30, heartbeat: 20 })
      await handler.ready
      await handler.write([1, 2, 3].map((id) => ({ type: 'create' as const, table: 'todos', key: id, value: { id } })))
      await handler.write([{ type: 'update', table: 'todos', key: 1, value: { id: 1, later: true } }])
    })
    afterEach(async () => {
      await handler.close()
      await closeDatabase()
    })

    /** Opens a stream at `since`: its events as they come, and when it ended. */
    const openStream = async (since: number) => {
      const response = await handler(new Request(`http://sync.test/stream?v=2&since=${since}&clientId=c`))
      expect(response.status).toBe(200)
      const events = readEvents(response.body!)[Symbol.asyncIterator]()
      const next = async () => (await events.next()).value as { event: string; data: string } | undefined
      /** Resolves once the stream ends (events after this call are skipped). */
      const ended = async () => {
        while ((await events.next()).done !== true);
      }
      return { next, ended, cancel: () => response.body!.cancel().catch(() => undefined) }
    }
    const hello = async (since: number) => {
      const stream = await openStream(since)
      const event = await stream.next()
      await stream.cancel()
      expect(event?.event).toBe('hello')
      return JSON.parse(event!.data) as { head: number; epoch: string }
    }

    it('a restore to an older revision ends every open stream', async () => {
      const stream = await openStream(1)
      expect((await stream.next())?.event).toBe('hello')
      expect((await stream.next())?.event).toBe('batch')
      // What a restore of a backup taken at revision 1 leaves: the newer batches gone, the head back.
      await database.query('delete from changecast_changes where rev > 1')
      await database.query('delete from changecast_batches where rev > 1')
      await database.query('update changecast_meta set head = 1 where id = 1')
      await stream.ended()
      // Reconnected: the hello names the head below the client's position.
      expect(await hello(2)).toMatchObject({ head: 1 })
    })

    it('another epoch (the log recreated) ends every open stream', async () => {
      const stream = await openStream(2)
      expect((await stream.next())?.event).toBe('hello')
      await database.query(`update changecast_meta set epoch = 'recreated' where id = 1`)
      await stream.ended()
      expect(await hello(0)).toMatchObject({ epoch: 'recreated' })
    })
  })
}
