// Cacheable catch-up pages in real Chromium: two browser profiles come back after the server
// moved on 60 revisions, and catch up through a real nginx (proxy_cache) in front of the real
// changecast-server (PGlite, --cacheable-pages): the browser follows the pull's redirect to
// each page (cross-origin, CORS), the first profile's pages reach the server, the second's
// come from the cache, and both hold exactly the server's rows.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test } from '@playwright/test'
import { harnessPort } from '../playwright.config'
import { buildPackages } from '../scripts/build-packages.mjs'
import { startCachingProxy } from '../scripts/nginx.mjs'
import { pushBatch, startSyncServer, type SyncServerProcess } from '../scripts/sync-server-process.mjs'

const PAGE = 10
const WRITES = 60

let data: string
let server: SyncServerProcess
let proxy: Awaited<ReturnType<typeof startCachingProxy>>

test.beforeAll(async () => {
  test.setTimeout(180_000)
  buildPackages(['core', 'server'])
  data = mkdtempSync(join(tmpdir(), 'changecast-pages-'))
  server = await startSyncServer([
    '--data',
    data,
    '--cors-origin',
    '*',
    '--cacheable-pages',
    '--page-revisions',
    String(PAGE),
  ])
  proxy = await startCachingProxy(server.url)
})
test.afterAll(async () => {
  await proxy?.stop()
  await server?.stop()
  rmSync(data, { recursive: true, force: true })
})

test('two profiles away while the server moved on catch up through nginx: pages from the server once, then from the cache', async ({
  browser,
}) => {
  test.setTimeout(240_000)
  const profiles = await Promise.all([browser.newContext(), browser.newContext()])
  const pages = await Promise.all(profiles.map((context) => context.newPage()))
  const sync = (page: (typeof pages)[number]) =>
    page.evaluate((options) => window.harness.firstSync(options), {
      url: proxy.url,
      name: 'pages',
      local: 0,
      localFrom: 0,
    })
  for (const page of pages) {
    await page.goto(`http://127.0.0.1:${harnessPort}/`)
    await expect(page.locator('body[data-ready="true"]')).toBeAttached()
    // Synced once (an empty server), then away.
    expect((await sync(page)).count).toBe(0)
  }
  for (let id = 1; id <= WRITES; id++) {
    await pushBatch(server.url, 'another-user', id, [
      { type: 'create', table: 'rows', key: id, value: { id, title: `row ${id}` } },
    ])
  }
  const before = proxy.cacheLog().length
  const [first, second] = [await sync(pages[0]!), await sync(pages[1]!)]
  for (const back of [first, second]) {
    // Every row, each as one remote event, with no snapshot again.
    expect(back.count).toBe(WRITES)
    expect(back.events).toBe(WRITES)
    expect(back.resyncs).toEqual([])
  }
  const log = proxy.cacheLog().slice(before)
  const served = log.filter((entry) => entry.uri.includes('/page?'))
  expect(served.map((entry) => entry.status)).toEqual(Array(2 * (WRITES / PAGE)).fill(200))
  // The first profile's pages reached the server; the second's came from the cache.
  expect(served.filter((entry) => entry.cache !== 'HIT')).toHaveLength(WRITES / PAGE)
  expect(served.slice(WRITES / PAGE).every((entry) => entry.cache === 'HIT')).toBe(true)
  for (const context of profiles) await context.close()
})
