import { expect, type BrowserContext, type Page } from '@playwright/test'

/** Opens the playground in a new tab of `context`, failing the test on any console error. */
export async function openPlayground(context: BrowserContext): Promise<Page> {
  const page = await context.newPage()
  page.on('console', (message) => {
    if (message.type() === 'error') throw new Error(`console error in the playground: ${message.text()}`)
  })
  page.on('pageerror', (error) => {
    throw error
  })
  await page.goto('/')
  await expect(page.getByTestId('origin')).not.toBeEmpty()
  await expect(page.getByTestId('task-row').first()).toBeVisible()
  return page
}

/** Titles of the task list, in order. */
export const taskTitles = (page: Page) =>
  page.getByTestId('task-title').evaluateAll((inputs) => inputs.map((input) => (input as HTMLInputElement).value))

/** Number of events the timeline counts under its current filters. */
export const timelineTotal = async (page: Page) => Number(await page.getByTestId('timeline-total').textContent())

/** Shows only create events in the timeline. */
export async function onlyCreates(page: Page) {
  await page.getByTestId('filter-update').uncheck()
  await page.getByTestId('filter-delete').uncheck()
}
