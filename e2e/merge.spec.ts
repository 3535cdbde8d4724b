// Field-level merge in real Chromium against the real changecast-server (PGlite): two
// browser profiles edit different fields of one card while offline, and press "+1" at the
// same time; every edit and every increment counts, everywhere.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test, type Page } from '@playwright/test'
import type { Card } from './harness/merge'
import { harnessPort } from '../playwright.config'
import { buildPackages } from '../scripts/build-packages.mjs'
import { startSyncServer, type SyncServerProcess } from '../scripts/sync-server-process.mjs'

let data: string
let server: SyncServerProcess

test.beforeAll(async () => {
  test.setTimeout(180_000)
  buildPackages(['core', 'server'])
  data = mkdtempSync(join(tmpdir(), 'changecast-merge-'))
  server = await startSyncServer(['--data', data, '--cors-origin', '*'])
})
test.afterAll(async () => {
  await server?.stop()
  rmSync(data, { recursive: true, force: true })
})

const merging = {
  open: (page: Page, name: string) =>
    page.evaluate((options) => window.harness.merging.open(options), { url: server.url, name }),
  put: (page: Page, name: string, card: Card) =>
    page.evaluate(([n, c]) => window.harness.merging.put(n, c), [name, card] as const),
  edit: (page: Page, name: string, fields: Partial<Card>) =>
    page.evaluate(([n, f]) => window.harness.merging.edit(n, 1, f), [name, fields] as const),
  plusOne: (page: Page, name: string, times: number) =>
    page.evaluate(([n, t]) => window.harness.merging.plusOne(n, 1, t), [name, times] as const),
  card: (page: Page, name: string) => page.evaluate((n) => window.harness.merging.card(n, 1), name),
  flush: (page: Page, name: string) => page.evaluate((n) => window.harness.merging.flush(n), name),
}

/** The card as the server holds it (a snapshot). */
async function serverCard(): Promise<Card | undefined> {
  const response = await fetch(`${server.url}/snapshot?v=2&clientId=probe&limit=100`)
  const body = (await response.json()) as { rows: Array<{ key: unknown; value: Card }> }
  return body.rows.find((row) => row.key === 1)?.value
}

// Waits for what a client shows (PGlite starts in seconds on a busy machine).
const patiently = { timeout: 90_000 }

test('two users edit different fields of one card offline, then press +1 fifty times each at once: both edits and all 100 increments count everywhere', async ({
  browser,
}) => {
  test.setTimeout(300_000)
  const annContext = await browser.newContext()
  const benContext = await browser.newContext()
  const ann = await annContext.newPage()
  const ben = await benContext.newPage()
  for (const page of [ann, ben]) {
    await page.goto(`http://127.0.0.1:${harnessPort}/`)
    await expect(page.locator('body[data-ready="true"]')).toBeAttached()
  }
  await merging.open(ann, 'ann')
  await merging.open(ben, 'ben')
  await merging.put(ann, 'ann', { id: 1, title: 'Launch plan', status: 'open', votes: 0 })
  await expect.poll(() => merging.card(ben, 'ben'), patiently).toMatchObject({ title: 'Launch plan' })

  await test.step('different fields edited offline: both edits survive', async () => {
    await annContext.setOffline(true)
    await benContext.setOffline(true)
    await merging.edit(ann, 'ann', { status: 'done' })
    await merging.edit(ben, 'ben', { title: 'Launch plan v2' })
    // Each sees only its own edit while offline.
    expect(await merging.card(ann, 'ann')).toMatchObject({ title: 'Launch plan', status: 'done' })
    expect(await merging.card(ben, 'ben')).toMatchObject({ title: 'Launch plan v2', status: 'open' })
    await annContext.setOffline(false)
    await benContext.setOffline(false)
    const merged = { id: 1, title: 'Launch plan v2', status: 'done', votes: 0 }
    await expect.poll(serverCard, patiently).toEqual(merged)
    await expect.poll(() => merging.card(ann, 'ann'), patiently).toEqual(merged)
    await expect.poll(() => merging.card(ben, 'ben'), patiently).toEqual(merged)
  })

  await test.step('+1 pressed 50 times in each profile at the same time: +100', async () => {
    await Promise.all([merging.plusOne(ann, 'ann', 50), merging.plusOne(ben, 'ben', 50)])
    await Promise.all([merging.flush(ann, 'ann'), merging.flush(ben, 'ben')])
    await expect.poll(async () => (await serverCard())?.votes, patiently).toBe(100)
    await expect.poll(async () => (await merging.card(ann, 'ann'))?.votes, patiently).toBe(100)
    await expect.poll(async () => (await merging.card(ben, 'ben'))?.votes, patiently).toBe(100)
    // The other fields are untouched by the increments.
    expect(await serverCard()).toEqual({ id: 1, title: 'Launch plan v2', status: 'done', votes: 100 })
  })
})
