import { expect, test, type Page } from '@playwright/test'
import { openPlayground, taskTitles } from './support'

/** Titles and statuses of the task list, for comparing two tabs. */
const board = (page: Page) =>
  page
    .getByTestId('task-row')
    .evaluateAll((rows) =>
      rows.map((row) => [
        (row.querySelector('input') as HTMLInputElement).value,
        (row.querySelector('select') as HTMLSelectElement).value,
      ]),
    )

test("a tab reloaded while another keeps writing ends up with the writer's list", async ({ context }) => {
  const a = await openPlayground(context)
  const b = await openPlayground(context)
  await a.getByTestId('worker-toggle').click()
  // The worker's module loads first (on a busy machine, seconds under Vite's dev server).
  await expect(a.getByTestId('worker-state')).toContainText('writing every', { timeout: 30_000 })
  await expect.poll(async () => Number(await a.getByTestId('count-tab').textContent())).toBeGreaterThan(2)

  await b.reload()
  await expect(b.getByTestId('task-row').first()).toBeVisible()
  // The worker keeps writing after B came back: B must follow those writes too.
  const heard = Number(await a.getByTestId('count-tab').textContent())
  await expect.poll(async () => Number(await a.getByTestId('count-tab').textContent())).toBeGreaterThan(heard + 2)
  await a.getByTestId('worker-toggle').click()
  await expect(a.getByTestId('worker-state')).toHaveText('stopped')

  await expect.poll(async () => JSON.stringify(await board(b))).toBe(JSON.stringify(await board(a)))
  expect(Number(await b.getByTestId('count-tab').textContent())).toBeGreaterThan(0)
  expect((await taskTitles(b)).length).toBeGreaterThanOrEqual(3)
})
