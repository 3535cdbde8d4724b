import { expect, test, type Page } from '@playwright/test'
import { harnessPort } from '../playwright.config'
import type { Seen } from './harness/context'

const harnessUrl = `http://127.0.0.1:${harnessPort}/`

async function openHarness(page: Page, name: string): Promise<string> {
  page.on('pageerror', (error) => {
    throw error
  })
  await page.goto(harnessUrl)
  await expect(page.locator('body[data-ready="true"]')).toBeAttached()
  return page.evaluate((db) => window.harness.open(db), name)
}

const seenIn = (page: Page) => page.evaluate(() => window.harness.seen())
const seenInWorker = (page: Page) => page.evaluate(() => window.harness.worker.seen() as Promise<Seen[]>)

/** The committed transactions, from the changelog: the truth every context must match. */
const committed = (page: Page, name: string) => page.evaluate((db) => window.harness.logRows(db), name)

function expectExactlyTheCommits(seen: Seen[], log: Array<{ rev: number; tx: string; events: number }>) {
  expect(seen.map((batch) => batch.rev)).toEqual(log.map((row) => row.rev))
  expect(seen.map((batch) => batch.tx)).toEqual(log.map((row) => row.tx))
  expect(seen.map((batch) => batch.events)).toEqual(log.map((row) => row.events))
  expect(seen.filter((batch) => batch.aborted)).toEqual([])
}

test('three pages and a worker writing at once each receive every committed batch once, in rev order', async ({
  context,
}) => {
  test.setTimeout(120_000)
  const name = `stress-${Date.now()}`
  const pages = await Promise.all([0, 1, 2].map(() => context.newPage()))
  const origins = await Promise.all(pages.map((page) => openHarness(page, name)))
  const workerOrigin = await pages[0]!.evaluate((db) => window.harness.worker.open(db), name)
  expect(new Set([...origins, workerOrigin]).size).toBe(4)

  const perContext = 80
  const results = await Promise.all([
    ...pages.map((page, i) =>
      page.evaluate(([count, seed]) => window.harness.write(count, seed), [perContext, 1000 + i] as const),
    ),
    pages[0]!.evaluate(
      ([count, seed]) => window.harness.worker.write(count, seed) as Promise<{ committed: number; aborted: number }>,
      [perContext, 2000] as const,
    ),
  ])
  const total = results.reduce((sum, r) => sum + r.committed + r.aborted, 0)
  const aborted = results.reduce((sum, r) => sum + r.aborted, 0)
  expect(total).toBeGreaterThanOrEqual(300)
  expect(aborted).toBeGreaterThan(0)

  const log = await committed(pages[0]!, name)
  expect(log).toHaveLength(total - aborted)
  const newest = log.at(-1)!.rev
  for (const page of pages) {
    await expect.poll(async () => (await seenIn(page)).at(-1)?.rev, { timeout: 30_000 }).toBe(newest)
    expectExactlyTheCommits(await seenIn(page), log)
  }
  await expect.poll(async () => (await seenInWorker(pages[0]!)).at(-1)?.rev, { timeout: 30_000 }).toBe(newest)
  expectExactlyTheCommits(await seenInWorker(pages[0]!), log)

  // Each context saw its own commits as local and the others' as tab.
  const first = await seenIn(pages[0]!)
  expect(
    first.every((batch) => (batch.origin === origins[0] ? batch.source === 'local' : batch.source === 'tab')),
  ).toBe(true)
  expect(new Set(first.map((batch) => batch.origin))).toEqual(new Set([...origins, workerOrigin]))
})

test('a page that sleeps (frozen) catches up on everything it missed, once and in order, when it wakes', async ({
  context,
}) => {
  const name = `frozen-${Date.now()}`
  const writer = await context.newPage()
  const sleeper = await context.newPage()
  const witness = await context.newPage()
  for (const page of [writer, sleeper, witness]) await openHarness(page, name)
  await writer.evaluate(() => window.harness.write(10, 7))
  let log = await committed(writer, name)
  await expect.poll(async () => (await seenIn(sleeper)).length).toBe(log.length)
  const before = log.length

  // The Page Lifecycle events Chrome fires when it freezes and resumes a background tab.
  await sleeper.evaluate(() => document.dispatchEvent(new Event('freeze')))
  await writer.evaluate(() => window.harness.write(40, 8))
  log = await committed(writer, name)
  // The witness hears every message; the sleeper, with its channel closed, hears none.
  await expect.poll(async () => (await seenIn(witness)).length).toBe(log.length)
  expect(await seenIn(sleeper)).toHaveLength(before)

  await sleeper.evaluate(() => document.dispatchEvent(new Event('resume')))
  await expect.poll(async () => (await seenIn(sleeper)).at(-1)?.rev).toBe(log.at(-1)!.rev)
  expectExactlyTheCommits(await seenIn(sleeper), log)
})

test('writes in a worker reach the page, and writes in the page reach the worker', async ({ page }) => {
  const name = `worker-${Date.now()}`
  const pageOrigin = await openHarness(page, name)
  const workerOrigin = await page.evaluate((db) => window.harness.worker.open(db), name)
  await page.evaluate(() => window.harness.worker.write(5, 3))
  await page.evaluate(() => window.harness.write(5, 4))
  const log = await committed(page, name)
  await expect.poll(async () => (await seenIn(page)).length).toBe(log.length)
  await expect.poll(async () => (await seenInWorker(page)).length).toBe(log.length)
  const inPage = await seenIn(page)
  const inWorker = await seenInWorker(page)
  expectExactlyTheCommits(inPage, log)
  expectExactlyTheCommits(inWorker, log)
  expect(inPage.filter((b) => b.origin === workerOrigin).every((b) => b.source === 'tab')).toBe(true)
  expect(inWorker.filter((b) => b.origin === pageOrigin).every((b) => b.source === 'tab')).toBe(true)
})

test("@changecast/testing's msw handlers serve sync in the browser through setupWorker", async ({ page }) => {
  await openHarness(page, `unused-${Date.now()}`)
  const result = await page.evaluate((name) => window.harness.syncThroughMockServiceWorker(name), `msw-${Date.now()}`)
  // Two local commits (two changes, one change), then the server-side edit.
  expect(result.batches).toEqual([2, 1, 1])
  expect(result.serverRows).toEqual([
    { id: 1, v: 10 },
    { id: 2, v: 2 },
    { id: 3, v: 3 },
  ])
  expect(result.local).toEqual(result.serverRows)
  expect(result.remote).toEqual([3])
})
