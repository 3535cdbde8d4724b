import { expect, test } from '@playwright/test'
import { openPlayground, timelineTotal } from './support'

test('a failing transaction emits no event in any tab', async ({ context }) => {
  const a = await openPlayground(context)
  const b = await openPlayground(context)
  const before = { a: await timelineTotal(a), b: await timelineTotal(b) }

  await a.getByTestId('failing-tx').click()
  await expect(a.getByTestId('status')).toContainText('Rolled back')
  // A write after it: once it has arrived everywhere, anything from the failed one would have too.
  await a.getByLabel('New task').fill('After the rollback')
  await a.getByRole('button', { name: 'Add', exact: true }).click()

  for (const [page, count] of [
    [a, before.a],
    [b, before.b],
  ] as const) {
    await expect(page.getByTestId('event').first()).toContainText('After the rollback')
    expect(await timelineTotal(page)).toBe(count + 1)
    await expect(page.getByText('This task never exists')).toHaveCount(0)
  }
})
