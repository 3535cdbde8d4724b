// Several servers in one database, each in its own schema, never meet.
import { describe, expect, it } from 'vitest'
import type { PullReply } from '@changecast/core/sync'
import { createSyncHandler, insecureNoAuth, openPGlite, openPostgres, type Database } from '@changecast/server'
import { freshPostgres } from './backends.js'

const pull = async (sync: (request: Request) => Promise<Response>) =>
  (await (await sync(new Request('http://sync.test/pull?v=2&since=0&clientId=reader'))).json()) as PullReply

const databases: Array<[string, () => Promise<{ database: Database; drop(): Promise<void> }>]> = [
  [
    'PGlite',
    async () => {
      const database = await openPGlite()
      return { database, drop: () => database.close() }
    },
  ],
  [
    'PostgreSQL',
    async () => {
      const fresh = await freshPostgres()
      const database = await openPostgres(fresh.url)
      return {
        database,
        async drop() {
          await database.close()
          await fresh.drop()
        },
      }
    },
  ],
]

for (const [name, open] of databases) {
  describe(`schemas on ${name}`, () => {
    it('keeps the log, revisions and epoch of each schema apart', async () => {
      const { database, drop } = await open()
      const [red, blue] = ['room_red', 'room_blue'].map((schema) =>
        createSyncHandler({ database, authenticate: insecureNoAuth, schema }),
      )
      try {
        expect(await red!.write([{ type: 'create', table: 'todos', key: 1, value: { id: 1, title: 'red' } }])).toBe(1)
        expect(await blue!.write([{ type: 'create', table: 'todos', key: 1, value: { id: 1, title: 'blue' } }])).toBe(1)
        expect(await red!.write([{ type: 'create', table: 'todos', key: 2, value: { id: 2, title: 'red' } }])).toBe(2)
        const [redLog, blueLog] = [await pull(red!), await pull(blue!)]
        expect(redLog.batches.map((batch) => batch.changes[0]!.value)).toEqual([
          { id: 1, title: 'red' },
          { id: 2, title: 'red' },
        ])
        expect(blueLog.batches.map((batch) => batch.changes[0]!.value)).toEqual([{ id: 1, title: 'blue' }])
        expect(redLog.epoch).not.toBe(blueLog.epoch)
        expect(await red!.read('todos', 1)).toEqual({ id: 1, title: 'red' })
      } finally {
        await red!.close()
        await blue!.close()
        await drop()
      }
    })
  })
}

it('refuses a schema that is not a plain identifier, at once', () => {
  for (const schema of ['Rooms', 'a-b', 'x"; drop table y; --', '', 'a'.repeat(42)]) {
    expect(() =>
      createSyncHandler({ database: new Promise<never>(() => undefined), authenticate: insecureNoAuth, schema }),
    ).toThrow(/schema must be a lower-case identifier/)
  }
})
