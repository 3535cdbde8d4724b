// Writes from the backend: `write` commits a batch of its own; `writeWith` joins the app's own
// transaction, so clients get the changes exactly when it commits, and never if it rolls back.
import { afterEach, describe, expect, it } from 'vitest'
import pg from 'pg'
import { PGlite } from '@electric-sql/pglite'
import { readEvents, type PullReply, type PushReply, type ServerEvent } from '@changecast/core/sync'
import {
  createSyncHandler,
  insecureNoAuth,
  openPGlite,
  openPostgres,
  type DriverTransaction,
  type SyncHandler,
} from '@changecast/server'
import { freshPostgres } from './backends.js'

const BASE = 'http://sync.test'
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Setup {
  sync: SyncHandler
  /** Runs `body` in a transaction of the app's own driver, committing unless it throws. */
  appTransaction(body: (tx: DriverTransaction) => Promise<void>): Promise<void>
  close(): Promise<void>
}

const setups: Record<string, () => Promise<Setup>> = {
  async pglite() {
    const app = await PGlite.create()
    const sync = createSyncHandler({ database: openPGlite(app), authenticate: insecureNoAuth, pollInterval: 100 })
    await sync.ready
    return {
      sync,
      appTransaction: async (body) => {
        await app.transaction(body)
      },
      async close() {
        await sync.close()
        await app.close()
      },
    }
  },
  async postgres() {
    const database = await freshPostgres()
    const db = await openPostgres(database.url)
    const sync = createSyncHandler({
      database: db,
      authenticate: insecureNoAuth,
      pollInterval: 100,
    })
    await sync.ready
    const app = new pg.Pool({ connectionString: database.url })
    // Dropping the database at the end terminates the pool's connections, ended or not: expected.
    app.on('error', () => {})
    return {
      sync,
      async appTransaction(body) {
        const client = await app.connect()
        try {
          await client.query('begin')
          await body(client)
          await client.query('commit')
        } catch (error) {
          await client.query('rollback')
          throw error
        } finally {
          client.release()
        }
      },
      async close() {
        await sync.close()
        await app.end()
        await db.close()
        await database.drop()
      },
    }
  },
}

for (const [backend, setup] of Object.entries(setups)) {
  describe(`backend writes on ${backend}`, () => {
    let current: Setup | undefined
    afterEach(async () => {
      await current?.close()
      current = undefined
    })
    const start = async () => (current = await setup())
    const pull = async (sync: SyncHandler, since = 0) =>
      (await (await sync(new Request(`${BASE}/pull?v=2&since=${since}&clientId=reader`))).json()) as PullReply
    const stream = async (sync: SyncHandler, since: number) => {
      const controller = new AbortController()
      const response = await sync(
        new Request(`${BASE}/stream?v=2&since=${since}&clientId=reader`, { signal: controller.signal }),
      )
      const events = readEvents(response.body!)
      const received: ServerEvent[] = []
      const done = (async () => {
        for await (const event of events) received.push(event)
      })().catch(() => undefined)
      return {
        batches: () =>
          received
            .filter((event) => event.event === 'batch')
            .map((event) => JSON.parse(event.data) as { rev: number; origin: string }),
        async stop() {
          controller.abort()
          await done
        },
      }
    }

    it('write() commits one batch with origin backend, streams it, and becomes the current state', async () => {
      const { sync } = await start()
      const listening = await stream(sync, 0)
      const rev = await sync.write([
        { type: 'create', table: 'todos', key: 7, value: { id: 7, title: 'from a job' } },
        { type: 'create', table: 'todos', key: new Date(5), value: { title: 'dated' } },
      ])
      expect(rev).toBe(1)
      await expect.poll(() => listening.batches()).toEqual([expect.objectContaining({ rev: 1, origin: 'backend' })])
      await listening.stop()
      const { batches } = await pull(sync)
      expect(batches[0]!.changes.map((change) => change.key)).toEqual([7, { $date: '1970-01-01T00:00:00.005Z' }])
      // Client pushes and backend writes share one sequence of revisions.
      const reply = (await (
        await sync(
          new Request(`${BASE}/push`, {
            method: 'POST',
            body: JSON.stringify({
              v: 2,
              clientId: 'c',
              batches: [
                {
                  rev: 1,
                  tx: 't',
                  at: 1,
                  changes: [{ type: 'create', table: 'todos', key: 7, value: { id: 7, title: 'from a tab' } }],
                },
              ],
            }),
          }),
        )
      ).json()) as PushReply
      expect(reply.acked).toHaveLength(1)
      expect(
        await sync.write([{ type: 'update', table: 'todos', key: 7, value: { id: 7, title: 'again' } }], {
          origin: 'cron',
        }),
      ).toBe(3)
      expect((await pull(sync, 2)).batches).toEqual([expect.objectContaining({ rev: 3, origin: 'cron' })])
    })

    it('write() refuses changes clients could not read, and stores nothing', async () => {
      const { sync } = await start()
      const bad: Array<[unknown, RegExp]> = [
        [[{ type: 'create', table: 'todos', key: { no: 'key' }, value: {} }], /key/],
        [[{ type: 'create', table: 'todos', key: 1 }], /value/],
        [[{ type: 'rename', table: 'todos', key: 1, value: {} }], /type/],
        [[], /at least one change/],
        [[{ type: 'create', table: 'todos', key: 1, value: { big: 'x'.repeat(5 * 1024 * 1024) } }], /over/],
      ]
      for (const [changes, message] of bad) {
        await expect(sync.write(changes as never)).rejects.toThrow(message)
      }
      expect((await pull(sync)).batches).toEqual([])
      expect(await sync.write([{ type: 'delete', table: 'todos', key: 1 }])).toBe(1)
    })

    it("writeWith() reaches clients when the app's transaction commits, not before", async () => {
      const { sync, appTransaction } = await start()
      const listening = await stream(sync, 0)
      let rev = 0
      await appTransaction(async (tx) => {
        rev = await sync.writeWith(
          tx,
          [{ type: 'create', table: 'todos', key: 1, value: { id: 1, title: 'with the order' } }],
          {
            origin: 'orders',
          },
        )
        // Longer than the poll interval: a reader that could see it would have by now.
        await sleep(400)
        expect(listening.batches()).toEqual([])
      })
      expect(rev).toBe(1)
      await expect.poll(() => listening.batches()).toEqual([expect.objectContaining({ rev: 1, origin: 'orders' })])
      await listening.stop()
    })

    it("writeWith() leaves no trace when the app's transaction rolls back, and no gap in revisions", async () => {
      const { sync, appTransaction } = await start()
      await expect(
        appTransaction(async (tx) => {
          await sync.writeWith(tx, [{ type: 'create', table: 'todos', key: 1, value: { id: 1, title: 'never' } }])
          throw new Error('the order failed')
        }),
      ).rejects.toThrow('the order failed')
      expect((await pull(sync)).batches).toEqual([])
      expect(await sync.write([{ type: 'create', table: 'todos', key: 2, value: { id: 2 } }])).toBe(1)
    })
  })
}
