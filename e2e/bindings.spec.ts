import { expect, test } from '@playwright/test'
import { openPlayground } from './support'

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
