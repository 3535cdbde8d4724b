// The client's seeded convergence scenario (packages/core/test/convergence.ts) against the
// real server: on PGlite, and on PostgreSQL with two instances behind a random "load
// balancer" (each request to either; restarts of either). Same faults, same exact checks.
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, it } from 'vitest'
import { withFaults } from '@changecast/testing'
import {
  createSyncHandler,
  insecureNoAuth,
  openPGlite,
  openPostgres,
  type Database,
  type SyncHandler,
  type SyncHandlerOptions,
} from '@changecast/server'
import { FAULTS, FORBIDDEN, scenario, seedsToRun, useMock, type OpenTarget } from '../../core/test/convergence.js'
import { closeAll } from '../../core/test/sync-helpers.js'
import { freshPostgres } from './backends.js'

const mock = setupServer()
beforeAll(() => mock.listen({ onUnhandledRequest: 'error' }))
afterAll(() => mock.close())
afterEach(async () => {
  await closeAll()
  mock.resetHandlers()
})
useMock(mock)

/** `count` instances of the server over databases from `open` (one each: as separate processes would). */
function realServer(
  open: () => Promise<{ databases: Database[]; drop(): Promise<void> }>,
  options: Partial<SyncHandlerOptions> = {},
): OpenTarget {
  return async (random) => {
    const { databases, drop } = await open()
    const start = async (database: Database) => {
      const handler = createSyncHandler({
        database,
        authenticate: insecureNoAuth,
        authorize: ({ change }) =>
          (change.value as { title?: string } | undefined)?.title === FORBIDDEN ? 'forbidden title' : undefined,
        heartbeat: 50,
        pollInterval: 100,
        ...options,
      })
      await handler.ready
      return handler
    }
    const instances: SyncHandler[] = []
    for (const database of databases) instances.push(await start(database))
    const pick = () => Math.floor(random() * instances.length)
    const faulty = withFaults((request) => instances[pick()]!(request), { random, ...FAULTS })
    const db = databases[0]!
    return {
      // The scenario gives each client its own path (…/{client}/push); the server serves at its root.
      async handle(request) {
        const url = new URL(request.url)
        const route = `http://sync.server/${url.pathname.split('/').pop()}${url.search}`
        const body = request.method === 'POST' ? await request.text() : undefined
        return faulty(
          new Request(route, { method: request.method, headers: request.headers, body, signal: request.signal }),
        )
      },
      configure: (faults) => faulty.configure(faults),
      edit: async (changes) => void (await instances[pick()]!.write(changes, { origin: 'another-user' })),
      async restart() {
        const which = pick()
        const old = instances[which]!
        instances[which] = await start(databases[which]!)
        await old.close()
      },
      batches: () =>
        db.query<{ rev: number; tx: string; origin: string }>(
          'select rev::int as rev, tx, origin from changecast_batches order by rev',
        ),
      rows: async (table) =>
        (
          await db.query<{ value: string }>(
            'select value from changecast_entities where tbl = $1 and value is not null',
            [table],
          )
        ).map((row) => JSON.parse(row.value) as unknown),
      async close() {
        for (const instance of instances) await instance.close()
        await drop()
      },
    }
  }
}

const pglite = realServer(async () => {
  const database = await openPGlite()
  return { databases: [database], drop: () => database.close() }
})

/** Pulls from a page boundary redirected to pages of 3 revisions: the client's own batches come back in them. */
const pglitePages = realServer(
  async () => {
    const database = await openPGlite()
    return { databases: [database], drop: () => database.close() }
  },
  { pages: { revisions: 3 } },
)

const postgresTwoInstances = realServer(async () => {
  const fresh = await freshPostgres()
  const databases = [await openPostgres(fresh.url, { max: 4 }), await openPostgres(fresh.url, { max: 4 })]
  return {
    databases,
    async drop() {
      for (const database of databases) await database.close()
      await fresh.drop()
    },
  }
})

const targets: Array<[string, OpenTarget]> = [
  ['PGlite', pglite],
  ['PGlite, with cacheable pages', pglitePages],
  ['PostgreSQL, two instances', postgresTwoInstances],
]
for (const [name, target] of targets) {
  describe(`sync converges under faults against the real server on ${name} (seeded, randomized)`, () => {
    for (const seed of seedsToRun()) {
      it(
        `seed ${seed}: every client ends on the server's state; every commit on the server once or rejected`,
        () => scenario(seed, target),
        180_000,
      )
    }
  })
}
