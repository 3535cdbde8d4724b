import { expect, test, type Page } from '@playwright/test'
import { openPlayground } from './support'

/** Projects and task counts the page shows for its user. */
const projects = (page: Page) => page.getByTestId('projects').locator('li').allTextContents()

/** The projects of the tasks in this page's own IndexedDB, read directly. */
const storedProjects = (page: Page, user: string): Promise<string[]> =>
  page.evaluate(
    (name) =>
      new Promise<string[]>((resolve, reject) => {
        const open = indexedDB.open(name)
        open.onerror = () => reject(open.error ?? new Error('IndexedDB could not open'))
        open.onsuccess = () => {
          const all = open.result.transaction('tasks').objectStore('tasks').getAll()
          all.onsuccess = () => {
            open.result.close()
            resolve(
              [...new Set((all.result as Array<{ project?: string }>).map((task) => task.project ?? 'shared'))].sort(),
            )
          }
        }
      }),
    `changecast-playground-${user}`,
  )

test('two users in two browser contexts each see only their projects; a shared project syncs between them', async ({
  browser,
}) => {
  const room = `teams-${Date.now()}`
  const ann = await openPlayground(await browser.newContext(), { room, user: 'ann' })
  const ben = await openPlayground(await browser.newContext(), { room, user: 'ben' })
  await expect(ann.getByTestId('user')).toHaveText('ann')
  // The first teams room of a server starts its in-memory PGlite (seconds) before it answers.
  await expect
    .poll(() => projects(ann), { timeout: 30_000 })
    .toEqual(['project:apollo: 3 tasks', 'project:mercury: 2 tasks', 'shared: 3 tasks'])
  await expect
    .poll(() => projects(ben), { timeout: 30_000 })
    .toEqual(['project:mercury: 2 tasks', 'project:zephyr: 3 tasks', 'shared: 3 tasks'])
  expect(await storedProjects(ann, 'ann')).toEqual(['project:apollo', 'project:mercury', 'shared'])
  expect(await storedProjects(ben, 'ben')).toEqual(['project:mercury', 'project:zephyr', 'shared'])

  // Ann adds to the shared project: Ben sees it. To Ben's project: refused, and nothing leaks.
  await ann.getByTestId('new-task-project').selectOption('project:mercury')
  await ann.getByTestId('add-to-project').click()
  await expect.poll(() => projects(ben)).toContain('project:mercury: 3 tasks')
  await ann.getByTestId('new-task-project').selectOption('project:zephyr')
  await ann.getByTestId('add-to-project').click()
  await expect(ann.getByTestId('rejection')).toContainText('not allowed')
  await expect.poll(() => projects(ann)).not.toContain('project:zephyr: 1 tasks')
  expect(await storedProjects(ann, 'ann')).not.toContain('project:zephyr')
  await expect.poll(() => projects(ben)).toContain('project:zephyr: 3 tasks')
})
