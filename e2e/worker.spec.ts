import { expect, test } from '@playwright/test'
import { openPlayground } from './support'

test("a worker's writes appear in the page, with source tab", async ({ context }) => {
  const page = await openPlayground(context)
  await page.getByTestId('worker-toggle').click()
  await expect(page.getByTestId('worker-state')).toContainText('writing every', { timeout: 30_000 })
  await expect(page.getByTestId('peer').filter({ hasText: 'worker' })).toHaveCount(1)

  await expect(page.locator('[data-testid="event"][data-source="tab"]').first()).toBeVisible()
  await expect.poll(async () => Number(await page.getByTestId('count-tab').textContent())).toBeGreaterThan(2)
  await expect(page.getByTestId('peer').filter({ hasText: 'worker' })).not.toContainText(' 0 events')
  await page.getByTestId('worker-toggle').click()
  await expect(page.getByTestId('worker-state')).toHaveText('stopped')
})
