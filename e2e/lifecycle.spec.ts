// The ordinary life of a synced app, in real Chromium against the real changecast-server
// (PGlite, JWT auth, one scope per user): a token that expires, users who switch on one
// browser profile, a server that stops and comes back, and one restored from an older copy
// of its data directory. Two browser contexts: a shared device, and another device of ann's
// that only reads.
import { createHmac } from 'node:crypto'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, test, type Page } from '@playwright/test'
import type { Task } from './harness/life'
import { harnessPort } from '../playwright.config'
import { buildPackages } from '../scripts/build-packages.mjs'
import { startSyncServer, type SyncServerProcess } from '../scripts/sync-server-process.mjs'

const SECRET = 'lifecycle-spec-secret'

/** An HS256 token for `user`, who reads and writes scope `user`; `expiresIn` seconds (negative: expired). */
function token(user: string, expiresIn = 3600): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: user, scopes: [user], exp: now + expiresIn })}`
  return `${unsigned}.${createHmac('sha256', SECRET).update(unsigned).digest('base64url')}`
}

async function freePort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise((resolve) => probe.close(resolve))
  return port
}

let data: string
let port: number
let server: SyncServerProcess | undefined
const url = () => `http://127.0.0.1:${port}`
/** Starts the server on its port and data directory (again, after a stop). */
const start = async () => {
  server = await startSyncServer([
    ...['--port', String(port), '--data', data, '--jwt-secret', SECRET],
    ...['--scope-field', 'owner', '--cors-origin', '*'],
  ])
}
const stop = async () => {
  await server?.stop()
  server = undefined
}

test.beforeAll(async () => {
  test.setTimeout(180_000)
  buildPackages(['core', 'server'])
  data = mkdtempSync(join(tmpdir(), 'changecast-lifecycle-'))
  port = await freePort()
  await start()
})
test.afterAll(async () => {
  await stop()
  rmSync(data, { recursive: true, force: true })
})

/** The tasks the server holds for `user`: a snapshot read with their token. */
async function serverTasks(user: string): Promise<Task[]> {
  const response = await fetch(`${url()}/snapshot?v=2&clientId=probe-${user}&limit=1000`, {
    headers: { authorization: `Bearer ${token(user)}` },
  })
  const body = (await response.json()) as { rows: Array<{ value: Task }> }
  return body.rows.map((row) => row.value).sort((a, b) => a.id - b.id)
}

async function openHarness(page: Page) {
  await page.goto(`http://127.0.0.1:${harnessPort}/`)
  await expect(page.locator('body[data-ready="true"]')).toBeAttached()
}

const life = {
  open: (page: Page, name: string, user: string) =>
    page.evaluate((options) => window.harness.lifecycle.open(options), { url: url(), name, token: token(user) }),
  setToken: (page: Page, name: string, value: string) =>
    page.evaluate(([n, t]) => window.harness.lifecycle.setToken(n, t), [name, value] as const),
  put: (page: Page, name: string, task: Task) =>
    page.evaluate(([n, t]) => window.harness.lifecycle.put(n, t), [name, task] as const),
  tasks: (page: Page, name: string) => page.evaluate((n) => window.harness.lifecycle.tasks(n), name),
  status: (page: Page, name: string) => page.evaluate((n) => window.harness.lifecycle.status(n), name),
  settled: (page: Page, name: string) => page.evaluate((n) => window.harness.lifecycle.settled(n), name),
  signOut: (page: Page, name: string) => page.evaluate((n) => window.harness.lifecycle.signOut(n), name),
  rejections: (page: Page, name: string) => page.evaluate((n) => window.harness.lifecycle.rejections(n), name),
  owners: (page: Page, name: string) => page.evaluate((n) => window.harness.lifecycle.owners(n), name),
}

const task = (id: number, owner: string, title: string): Task => ({ id, owner, title })
const ids = (tasks: Task[]) => tasks.map((item) => item.id)
// Waits for what a client shows (PGlite starts in seconds on a busy machine).
const patiently = { timeout: 90_000 }

test('a synced app lives through an expired token, a change of user, a stopped server and a restored one', async ({
  browser,
}) => {
  test.setTimeout(420_000)
  const shared = await (await browser.newContext()).newPage()
  const reader = await (await browser.newContext()).newPage()
  await openHarness(shared)
  await openHarness(reader)
  await life.open(shared, 'shared', 'ann')
  await life.open(reader, 'reader', 'ann')

  await test.step('a token expires mid-session and is refreshed: no write is lost', async () => {
    await life.put(shared, 'shared', task(1, 'ann', 'before expiry'))
    expect(await life.settled(shared, 'shared')).toEqual({ rev: 1, status: 'acked' })
    await life.setToken(shared, 'shared', token('ann', -60))
    await life.put(shared, 'shared', task(2, 'ann', 'written once the token expired'))
    // 401, headers() asked again (still the expired one), 401: the sync waits for a new token.
    await expect
      .poll(() => life.status(shared, 'shared'), patiently)
      .toMatchObject({
        state: 'unauthorized',
        outbox: 1,
      })
    await life.setToken(shared, 'shared', token('ann'))
    await expect.poll(() => life.status(shared, 'shared'), patiently).toMatchObject({ state: 'idle', outbox: 0 })
    expect(ids(await serverTasks('ann'))).toEqual([1, 2])
    await expect.poll(async () => ids(await life.tasks(reader, 'reader')), patiently).toEqual([1, 2])
  })

  await test.step("ann signs out and bob signs in on the same profile: bob never sees ann's rows; ann's pending write waits for her", async () => {
    // A write that cannot be pushed yet (the token expired) is pending when ann signs out.
    await life.setToken(shared, 'shared', token('ann', -60))
    await life.put(shared, 'shared', task(3, 'ann', 'pending at sign-out'))
    await expect.poll(() => life.status(shared, 'shared'), patiently).toMatchObject({ state: 'unauthorized' })
    await life.owners(shared, 'shared')
    await life.signOut(shared, 'shared')
    expect(await life.tasks(shared, 'shared')).toEqual([])
    await life.setToken(shared, 'shared', token('bob'))
    await life.put(shared, 'shared', task(10, 'bob', "bob's task"))
    expect(await life.settled(shared, 'shared')).toMatchObject({ status: 'acked' })
    await expect.poll(() => life.status(shared, 'shared'), patiently).toMatchObject({ state: 'idle', outbox: 0 })
    expect(await life.tasks(shared, 'shared')).toEqual([task(10, 'bob', "bob's task")])
    // Nothing of ann's reached bob's lists, and ann's pending write was not pushed as bob.
    expect(await life.owners(shared, 'shared')).toEqual(['bob'])
    expect(ids(await serverTasks('bob'))).toEqual([10])
    expect(ids(await serverTasks('ann'))).toEqual([1, 2])

    // Bob signs out, ann signs in again: her held write is pushed, under her name.
    await life.signOut(shared, 'shared')
    await life.setToken(shared, 'shared', token('ann'))
    await expect.poll(async () => ids(await serverTasks('ann')), patiently).toEqual([1, 2, 3])
    await expect.poll(async () => ids(await life.tasks(shared, 'shared')), patiently).toEqual([1, 2, 3])
    await expect.poll(async () => ids(await life.tasks(reader, 'reader')), patiently).toEqual([1, 2, 3])
    expect(await life.owners(shared, 'shared')).toEqual(['ann'])
  })

  await test.step('the server stops: a client that only reads shows offline within 5 s; it comes back', async () => {
    await expect.poll(() => life.status(reader, 'reader'), patiently).toMatchObject({ state: 'idle', outbox: 0 })
    await stop()
    await expect.poll(async () => (await life.status(reader, 'reader')).state, { timeout: 5000 }).toBe('offline')
    await start()
    await expect.poll(async () => (await life.status(reader, 'reader')).state, patiently).toBe('idle')
    await life.put(reader, 'reader', task(5, 'ann', 'after the restart'))
    expect(await life.settled(reader, 'reader')).toMatchObject({ status: 'acked' })
    await expect.poll(async () => ids(await life.tasks(shared, 'shared')), patiently).toEqual([1, 2, 3, 5])
  })

  await test.step('the data directory is replaced by an older copy: both clients end on it; the lost commits are in the inbox', async () => {
    const backup = mkdtempSync(join(tmpdir(), 'changecast-lifecycle-backup-'))
    try {
      await stop()
      cpSync(data, backup, { recursive: true })
      await start()
      await life.put(shared, 'shared', task(6, 'ann', 'acknowledged, then lost'))
      expect(await life.settled(shared, 'shared')).toMatchObject({ status: 'acked' })
      await expect.poll(async () => ids(await life.tasks(reader, 'reader')), patiently).toEqual([1, 2, 3, 5, 6])
      await stop()
      rmSync(data, { recursive: true, force: true })
      cpSync(backup, data, { recursive: true })
      await start()
      const restored = await serverTasks('ann')
      expect(ids(restored)).toEqual([1, 2, 3, 5])
      await expect.poll(() => life.tasks(shared, 'shared'), patiently).toEqual(restored)
      await expect.poll(() => life.tasks(reader, 'reader'), patiently).toEqual(restored)
      await expect
        .poll(() => life.rejections(shared, 'shared'), patiently)
        .toEqual([
          expect.objectContaining({
            code: 'lost-on-server',
            changes: [{ type: 'create', table: 'tasks', key: 6, value: task(6, 'ann', 'acknowledged, then lost') }],
          }),
        ])
      expect(await life.rejections(reader, 'reader')).toEqual([])
    } finally {
      rmSync(backup, { recursive: true, force: true })
    }
  })
})
