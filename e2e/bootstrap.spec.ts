import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test } from '@playwright/test'
import { harnessPort } from '../playwright.config'
import { buildPackages } from '../scripts/build-packages.mjs'
import { pushBatch, seedRows, startSyncServer, type SyncServerProcess } from '../scripts/sync-server-process.mjs'

const ROWS = 100_000
const LOCAL = 50
const LOCAL_FROM = 1_000_000

let server: SyncServerProcess
let data: string
test.beforeAll(async () => {
  test.setTimeout(240_000)
  buildPackages(['core', 'server'])
  data = mkdtempSync(join(tmpdir(), 'changecast-bootstrap-'))
  // A short retention, so that compaction runs during the test.
  server = await startSyncServer(['--data', data, '--insecure-no-auth', '--cors-origin', '*', '--retention', '2s'])
  await seedRows(server.url, { count: ROWS })
})
test.afterAll(async () => {
  await server?.stop()
  rmSync(data, { recursive: true, force: true })
})

test('a new client loads 100,000 rows from a snapshot into IndexedDB, with its outbox kept; after compaction a stale client loads a new one', async ({
  page,
}) => {
  test.setTimeout(240_000)
  await page.goto(`http://127.0.0.1:${harnessPort}/`)
  const name = `bootstrap-${Date.now()}`
  const first = await page.evaluate((options) => window.harness.firstSync(options), {
    url: server.url,
    name,
    local: LOCAL,
    localFrom: LOCAL_FROM,
  })
  expect(first.count).toBe(ROWS + LOCAL)
  // Pages, in order, with the total known from the first one.
  expect(first.progress.length).toBeGreaterThan(5)
  expect(first.progress.at(-1)).toEqual({ loaded: ROWS, total: ROWS })
  expect(first.status).toMatchObject({ outbox: 0, setAside: 0, phase: undefined })
  expect(first.resyncs).toEqual([])
  expect(first.sample).toMatchObject({ title: 'local 0' })
  console.log(`first sync of ${ROWS} rows (+ ${LOCAL} local writes pushed): ${first.ms} ms`)

  // The local writes reached the server: a snapshot from another client holds them.
  const snapshot = (await (await fetch(`${server.url}/snapshot?v=2&clientId=probe&limit=1`)).json()) as {
    total: number
  }
  expect(snapshot.total).toBe(ROWS + LOCAL)

  // While the client is away: updates and deletes, then compaction past its position.
  const changes = [
    ...Array.from({ length: 100 }, (_, i) => ({ type: 'delete', table: 'rows', key: i + 1 })),
    { type: 'update', table: 'rows', key: 500, value: { id: 500, title: 'changed while away' } },
  ]
  await pushBatch(server.url, 'another-user', 1, changes)
  await page.waitForTimeout(3500)
  const again = await page.evaluate((options) => window.harness.firstSync(options), {
    url: server.url,
    name,
    local: 0,
    localFrom: 500,
  })
  expect(again.resyncs).toEqual(['server-refetch'])
  expect(again.count).toBe(ROWS + LOCAL - 100)
  expect(again.sample).toEqual({ id: 500, title: 'changed while away' })
  // Only what changed raised events: the deletes (not removals: nothing left the view) and the update.
  expect(again.removed).toBe(0)
  expect(again.events).toBe(101)
  console.log(`stale client re-bootstrap after compaction: ${again.ms} ms`)
})
