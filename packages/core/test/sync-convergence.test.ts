// Seeded, randomized convergence against the in-memory server with every fault it has;
// the properties of docs/protocol.md are checked exactly at the end (see convergence.ts).
// CI runs a fixed handful of seeds; CONVERGENCE_SEEDS=200 (or a list: "3,17") runs more.
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, it } from 'vitest'
import { createSyncServer } from '@changecast/testing'
import { FAULTS, FORBIDDEN, scenario, seedsToRun, useMock, type OpenTarget } from './convergence.js'
import { closeAll, type Todo } from './sync-helpers.js'

const mock = setupServer()
beforeAll(() => mock.listen({ onUnhandledRequest: 'error' }))
afterAll(() => mock.close())
afterEach(async () => {
  await closeAll()
  mock.resetHandlers()
})
useMock(mock)

const inMemory: OpenTarget = (random) => {
  const server = createSyncServer({
    random,
    ...FAULTS,
    heartbeat: 50,
    reject: (change) => ((change.value as Todo | undefined)?.title === FORBIDDEN ? 'forbidden title' : undefined),
  })
  const done = <T>(value?: T) => Promise.resolve(value as T)
  return done({
    handle: (request) => server.handle(request),
    configure: (faults) => server.configure(faults),
    edit: (changes) => done(void server.edit(changes)),
    restart: () => done(server.restart()),
    batches: () => done(server.batches),
    rows: (table) => done(server.rows(table).map((row) => row.value)),
    close: () => done(server.close()),
  })
}

describe('sync converges under faults (seeded, randomized)', () => {
  for (const seed of seedsToRun()) {
    it(
      `seed ${seed}: every client ends on the server's state; every commit on the server once or rejected`,
      () => scenario(seed, inMemory),
      180_000,
    )
  }
})
