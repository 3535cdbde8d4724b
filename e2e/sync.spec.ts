import { expect, test, type Page } from '@playwright/test'
import { openPlayground, serverState } from './support'

async function addTask(page: Page, title: string) {
  await page.getByLabel('New task').fill(title)
  await page.getByRole('button', { name: 'Add', exact: true }).click()
  await expect(page.getByTestId('task-title').last()).toHaveValue(title)
}

test('offline in two tabs, a reload, back online: the server receives every change exactly once', async ({
  context,
}) => {
  const a = await openPlayground(context, { offlineOk: true })
  const b = await openPlayground(context, { offlineOk: true })
  await expect(a.getByTestId('sync-outbox')).toHaveText('0')
  const before = await serverState(a)

  await context.setOffline(true)
  await expect(a.getByTestId('sync-state')).toHaveText('offline')
  await addTask(a, 'Offline in A, 1')
  await addTask(b, 'Offline in B, 1')
  await addTask(a, 'Offline in A, 2')
  await addTask(b, 'Offline in B, 2')
  await expect(b.getByTestId('sync-outbox')).toHaveText('4')

  // Reload B while the sync server stays unreachable: the outbox is in IndexedDB, not in memory.
  await context.route('**/api/sync/**', (route) => route.abort())
  await context.setOffline(false)
  await b.reload()
  await expect(b.getByTestId('task-row').first()).toBeVisible()
  await expect(b.getByTestId('sync-outbox')).toHaveText('4')
  expect((await serverState(a)).batches).toBe(before.batches)

  await context.unroute('**/api/sync/**')
  await b.getByTestId('sync-now').click()
  await expect(a.getByTestId('sync-outbox')).toHaveText('0')
  await expect(b.getByTestId('sync-outbox')).toHaveText('0')
  const after = await serverState(a)
  expect(after.batches - before.batches).toBe(4)
  expect(new Set(after.txs).size).toBe(after.txs.length)
  const titles = after.tasks.map((task) => task.title).filter((title) => title.startsWith('Offline'))
  expect(titles.sort()).toEqual(['Offline in A, 1', 'Offline in A, 2', 'Offline in B, 1', 'Offline in B, 2'])
})

test('a change made by another user on the server appears in both tabs as remote', async ({ context }) => {
  const a = await openPlayground(context)
  const b = await openPlayground(context)
  await expect(a.getByTestId('sync-outbox')).toHaveText('0')
  await expect.poll(async () => (await serverState(a)).tasks.length).toBeGreaterThan(0)

  // Task 7 does not exist yet: the other user creates it, then renames it.
  for (const type of ['create', 'update']) {
    await a.getByTestId('another-user').click()
    for (const page of [a, b]) {
      await expect(page.locator('[data-testid="event"][data-source="remote"]').first()).toHaveAttribute(
        'data-type',
        type,
      )
      await expect(page.getByLabel('Title of task 7')).toHaveValue(/^Edited by another user/)
    }
  }
  await expect(a.getByTestId('count-remote')).toHaveText('2')
  await expect(b.getByTestId('count-remote')).toHaveText('2')
  // The Tabs panel says where those came from: another client, through the server — not a tab.
  for (const page of [a, b]) {
    const peers = page.getByTestId('peer')
    await expect(peers.filter({ hasText: 'client via the server' })).toHaveCount(1)
    await expect(peers.filter({ hasText: 'client via the server' })).toContainText('another')
    await expect(peers.filter({ hasText: / tab · / })).toHaveCount(1)
  }
})

test('closing the leader tab hands sync over to another tab within a second', async ({ context }) => {
  const a = await openPlayground(context)
  await expect(a.getByTestId('sync-leader')).toHaveText('this tab')
  const b = await openPlayground(context)
  await expect(b.getByTestId('sync-leader')).toHaveText('another tab')
  await expect(b.getByTestId('sync-state')).toHaveText('idle')

  await a.close()
  await expect(b.getByTestId('sync-leader')).toHaveText('this tab', { timeout: 1000 })
  await addTask(b, 'Pushed by the new leader')
  await expect
    .poll(async () => (await serverState(b)).tasks.map((task) => task.title))
    .toContain('Pushed by the new leader')
})
