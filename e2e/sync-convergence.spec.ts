import { expect, test, type BrowserContext, type Page } from '@playwright/test'
import { openPlayground, serverState } from './support'

type Task = { id: number; title: string }

/** The tasks in this browser profile's IndexedDB, read directly (not through the page's UI). */
const storedTasks = (page: Page): Promise<Task[]> =>
  page.evaluate(
    () =>
      new Promise<Task[]>((resolve, reject) => {
        const open = indexedDB.open('changecast-playground')
        open.onerror = () => reject(open.error ?? new Error('IndexedDB could not open'))
        open.onsuccess = () => {
          const db = open.result
          const all = db.transaction('tasks').objectStore('tasks').getAll()
          all.onsuccess = () => {
            db.close()
            resolve(all.result as Task[])
          }
        }
      }),
  )

const byId = (tasks: Task[]) => [...tasks].sort((a, b) => a.id - b.id)

async function control(page: Page, room: string, body: object) {
  const response = await page.request.post(`/api/sync/${room}/control`, { data: body })
  expect(response.ok()).toBe(true)
}

async function addTask(page: Page, title: string) {
  await page.getByLabel('New task').fill(title)
  await page.getByRole('button', { name: 'Add', exact: true }).click()
}

async function rename(page: Page, id: number, title: string) {
  const input = page.getByLabel(`Title of task ${id}`)
  await input.fill(title)
  await input.press('Tab')
}

/** The tab of `pages` that syncs for its profile. */
async function leaderOf(pages: Page[]): Promise<Page> {
  await expect
    .poll(
      async () =>
        (await Promise.all(pages.map((p) => p.getByTestId('sync-leader').textContent()))).filter(
          (t) => t === 'this tab',
        ).length,
    )
    .toBe(1)
  for (const page of pages) if ((await page.getByTestId('sync-leader').textContent()) === 'this tab') return page
  throw new Error('no leader')
}

test('two browser profiles × two tabs, offline spells, reloads, a leader closing and server faults: every client ends equal to the server', async ({
  browser,
}) => {
  test.setTimeout(120_000)
  const room = `converge-${Date.now()}`
  const profiles: BrowserContext[] = [await browser.newContext(), await browser.newContext()]
  const open = (profile: BrowserContext) => openPlayground(profile, { room, offlineOk: true })
  const tabs = [
    [await open(profiles[0]!), await open(profiles[0]!)],
    [await open(profiles[1]!), await open(profiles[1]!)],
  ]
  const [a, b] = tabs as [Page[], Page[]]
  for (const page of [...a, ...b]) await expect(page.getByTestId('sync-state')).toHaveText('idle')

  // Faults on the server: slow, and a third of the requests answered 503/429.
  await control(a[0]!, room, { latency: 40, failureRate: 0.3 })
  await addTask(a[0]!, 'A: first')
  await addTask(b[0]!, 'B: first')
  await rename(a[1]!, 1, 'A renames 1')
  await rename(b[1]!, 1, 'B renames 1')

  // Profile A goes offline for a while and keeps writing in both tabs.
  await profiles[0]!.setOffline(true)
  await addTask(a[1]!, 'A: offline')
  await rename(a[0]!, 2, 'A renames 2 offline')
  await rename(b[0]!, 2, 'B renames 2 meanwhile')
  await control(b[0]!, room, { edit: { key: 2, title: 'Another user renames 2' } })
  await b[1]!.reload()
  await expect(b[1]!.getByTestId('task-row').first()).toBeVisible()
  await profiles[0]!.setOffline(false)

  // A's leader tab closes; the other takes over and a new tab opens.
  const leader = await leaderOf(a)
  a.splice(a.indexOf(leader), 1)
  await leader.close()
  a.push(await open(profiles[0]!))
  await rename(a[0]!, 3, 'A renames 3 after the hand-over')
  await rename(b[0]!, 3, 'B renames 3 at the same time')
  await addTask(b[1]!, 'B: after reload')

  // Everything online and quiet.
  await control(a[0]!, room, { latency: 0, failureRate: 0 })
  for (const pages of [a, b]) {
    await expect
      .poll(
        async () => {
          await pages[0]!.getByTestId('sync-now').click()
          return (await Promise.all(pages.map((page) => page.getByTestId('sync-outbox').textContent()))).join()
        },
        { timeout: 30_000 },
      )
      .toBe(pages.map(() => '0').join())
  }
  // A last round in each profile, so both have pulled everything the other pushed.
  for (const pages of [a, b]) {
    await pages[0]!.getByTestId('sync-now').click()
    await expect(pages[0]!.getByTestId('sync-log').locator('li').first()).toContainText('synced')
  }

  // Both profiles number new tasks from the same counter: where they collided, the server kept
  // the last write. What matters is that every profile holds exactly what the server holds.
  const server = byId((await serverState(a[0]!)).tasks as Task[])
  expect(server.length).toBeGreaterThanOrEqual(4)
  for (const pages of [a, b]) {
    await expect.poll(async () => byId(await storedTasks(pages[0]!))).toEqual(server)
    // Every tab shows what is stored.
    for (const page of pages) {
      await expect
        .poll(() =>
          page
            .getByTestId('task-title')
            .evaluateAll((inputs) => inputs.map((input) => (input as HTMLInputElement).value).sort()),
        )
        .toEqual(server.map((task) => task.title).sort())
    }
  }
  for (const profile of profiles) await profile.close()
})

test('the playground sync server answers a malformed control request with 400 and keeps serving', async ({
  context,
}) => {
  const page = await openPlayground(context)
  const room = new URL(page.url()).searchParams.get('room')!
  const bad = await page.request.post(`/api/sync/${room}/control`, {
    data: Buffer.from('{not json'),
    headers: { 'content-type': 'application/json' },
  })
  expect(bad.status()).toBe(400)
  expect(((await bad.json()) as { error: string }).error).toMatch(/not JSON/)
  const push = await page.request.post(`/api/sync/${room}/push`, { data: { v: 2, clientId: 'x', batches: [null] } })
  expect(push.status()).toBe(400)
  // Still serving: the page's own sync goes on.
  await page.getByLabel('New task').fill('After the bad requests')
  await page.getByRole('button', { name: 'Add', exact: true }).click()
  await expect
    .poll(async () => (await serverState(page)).tasks.map((task) => task.title))
    .toContain('After the bad requests')
})
