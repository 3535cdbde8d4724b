import { expect, test } from '@playwright/test'
import { onlyCreates, openPlayground, taskTitles, timelineTotal } from './support'

test('a bulk add of 1,000 rows shows 1,000 creates and identical lists in both tabs', async ({ context }) => {
  const a = await openPlayground(context)
  const b = await openPlayground(context)
  await onlyCreates(a)
  await onlyCreates(b)
  const before = { a: await timelineTotal(a), b: await timelineTotal(b) }

  await a.getByTestId('bulk-add').click()

  await expect(a.getByTestId('task-count')).toHaveText('1003')
  await expect(b.getByTestId('task-count')).toHaveText('1003')
  await expect.poll(() => timelineTotal(a)).toBe(before.a + 1000)
  await expect.poll(() => timelineTotal(b)).toBe(before.b + 1000)
  await expect(b.getByTestId('count-tab')).toHaveText('1000')
  expect(await taskTitles(b)).toEqual(await taskTitles(a))
})
