import { expect, test } from '@playwright/test'
import { openPlayground } from './support'

test('a task added in the editor appears in the live timeline as a local create', async ({ context }) => {
  const page = await openPlayground(context)
  await page.getByLabel('New task').fill('Write the docs')
  await page.getByRole('button', { name: 'Add', exact: true }).click()

  const event = page.getByTestId('event').first()
  await expect(event).toHaveAttribute('data-type', 'create')
  await expect(event).toHaveAttribute('data-source', 'local')
  await expect(event).toContainText('Write the docs')
  await expect(page.getByTestId('task-title').last()).toHaveValue('Write the docs')
})
