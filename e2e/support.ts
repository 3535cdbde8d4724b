import { expect, test, type BrowserContext, type Page } from '@playwright/test'

/**
 * Opens the playground in a new tab of `context`, failing the test on any console error.
 * Tabs of one test share a sync room (a server of their own); `offlineOk` tolerates the
 * browser's own network-error messages in tests that cut the network.
 */
export async function openPlayground(
  context: BrowserContext,
  { room = test.info().testId, offlineOk = false, user }: { room?: string; offlineOk?: boolean; user?: string } = {},
): Promise<Page> {
  const page = await context.newPage()
  page.on('console', (message) => {
    if (message.type() !== 'error') return
    if (
      offlineOk &&
      /ERR_INTERNET_DISCONNECTED|ERR_FAILED|Failed to fetch|net::|status of (429|503)/.test(message.text())
    )
      return
    throw new Error(`console error in the playground: ${message.text()}`)
  })
  page.on('pageerror', (error) => {
    throw error
  })
  await page.goto(`/?room=${room}${user ? `&user=${user}` : ''}`)
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

/** What the playground's sync server of this test's room holds. */
export async function serverState(
  page: Page,
): Promise<{ batches: number; txs: string[]; tasks: Array<{ title: string }> }> {
  const room = new URL(page.url()).searchParams.get('room')
  const response = await page.request.get(`/api/sync/${room}/control`)
  return (await response.json()) as { batches: number; txs: string[]; tasks: Array<{ title: string }> }
}
