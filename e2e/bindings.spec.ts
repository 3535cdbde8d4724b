import { expect, test } from '@playwright/test'
import { openPlayground, serverState } from './support'

test('the React, Vue, Solid and Svelte panels all follow a write made in another tab', async ({ context }) => {
  const a = await openPlayground(context)
  const b = await openPlayground(context)
  for (const prefix of ['react', 'vue', 'solid', 'svelte']) {
    await expect(b.getByTestId(`${prefix}-task-1`)).toHaveText('Sketch the timeline')
    await expect(b.getByTestId(`${prefix}-count-doing`)).toHaveText('1')
  }

  await a.getByLabel('Title of task 1').fill('Changed in tab A')
  await a.getByLabel('Title of task 1').press('Enter')
  await a.getByLabel('Status of task 3').selectOption('doing')

  for (const prefix of ['react', 'vue', 'solid', 'svelte']) {
    await expect(b.getByTestId(`${prefix}-task-1`)).toHaveText('Changed in tab A')
    await expect(b.getByTestId(`${prefix}-count-doing`)).toHaveText('2')
    await expect(b.getByTestId(`${prefix}-count-todo`)).toHaveText('0')
    await expect(b.getByTestId(`${prefix}-activity`).locator('li').first()).toContainText('update task 3 tab')
  }
})

test('a title that is not a string, written by another client, shows as text in every panel (none unmounts)', async ({
  context,
}) => {
  const a = await openPlayground(context)
  // The seeded tasks are on the server first: the other client's write comes after them.
  await expect(a.getByTestId('sync-outbox')).toHaveText('0')
  await expect.poll(async () => (await serverState(a)).tasks.length).toBeGreaterThan(0)
  const room = new URL(a.url()).searchParams.get('room')
  const response = await a.request.post(`/api/sync/${room}/control`, {
    data: { edit: { key: 1, title: { rich: 'text' } } },
  })
  expect(response.ok()).toBe(true)
  for (const prefix of ['react', 'vue', 'solid', 'svelte']) {
    await expect(a.getByTestId(`${prefix}-task-1`)).toHaveText('{"rich":"text"}')
    await expect(a.getByTestId(`${prefix}-panel`)).toBeVisible()
  }
  // And the panels go on following changes.
  await a.getByLabel('Status of task 3').selectOption('doing')
  for (const prefix of ['react', 'vue', 'solid', 'svelte']) {
    await expect(a.getByTestId(`${prefix}-count-doing`)).toHaveText('2')
  }
})
