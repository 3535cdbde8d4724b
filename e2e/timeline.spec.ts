import { expect, test } from '@playwright/test'

test('a task added in the editor appears in the live timeline as a local create', async ({ page }) => {
  const errors: string[] = []
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text())
  })
  page.on('pageerror', (error) => errors.push(error.message))

  await page.goto('/')
  await expect(page.getByTestId('origin')).not.toBeEmpty()
  await page.getByLabel('New task').fill('Write the docs')
  await page.getByRole('button', { name: 'Add' }).click()

  const first = page.getByTestId('timeline').locator('li').first()
  await expect(first).toHaveAttribute('data-type', 'create')
  await expect(first).toHaveAttribute('data-source', 'local')
  await expect(page.getByTestId('tasks')).toContainText('Write the docs')
  expect(errors).toEqual([])
})
