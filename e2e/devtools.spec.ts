import { expect, test, type BrowserContext, type Page } from '@playwright/test'
import { harnessPort } from '../playwright.config'

const PAGES = ['plain', 'react', 'vue'] as const

async function open(context: BrowserContext, kind: (typeof PAGES)[number]): Promise<Page> {
  const page = await context.newPage()
  page.on('pageerror', (error) => {
    throw error
  })
  await page.goto(`http://127.0.0.1:${harnessPort}/devtools/${kind}.html`)
  await expect(page.locator('body')).toHaveAttribute('data-ready', '')
  return page
}

/** Opens a floating panel from the keyboard: Tab to its button, Enter. */
async function openFromKeyboard(page: Page) {
  const toggle = page.getByTestId('devtools-toggle')
  await expect(toggle).toHaveAttribute('aria-expanded', 'false')
  for (let i = 0; i < 10 && !(await toggle.evaluate((el) => el.matches(':focus'))); i++)
    await page.keyboard.press('Tab')
  await expect(toggle).toBeFocused()
  await page.keyboard.press('Enter')
  await expect(toggle).toHaveAttribute('aria-expanded', 'true')
}

for (const kind of PAGES) {
  test(`devtools in a ${kind} page: events from another tab appear, an entity's history opens, styles stay apart`, async ({
    context,
  }) => {
    const page = await open(context, kind)
    const other = await open(context, kind)
    if (kind !== 'vue') await openFromKeyboard(page)
    // Inline (Vue) is open from the start.
    await expect(page.getByTestId('timeline')).toBeVisible()

    await other.evaluate(() => window.app.put(1, 'from another tab'))
    const event = page.getByTestId('event').first()
    await expect(event).toHaveAttribute('data-source', 'tab')
    await expect(event).toContainText('text: "from another tab"')
    await expect(page.getByTestId('devtools-peer')).toHaveCount(1)

    await page.evaluate(() => window.app.put(1, 'renamed here'))
    await expect(page.getByTestId('event').first()).toHaveAttribute('data-source', 'local')
    await expect(page.getByTestId('event').first()).toContainText('text: "from another tab" → "renamed here"')

    // The history of one entity, from the keyboard.
    await page.getByTestId('event').first().getByRole('button').focus()
    await page.keyboard.press('Enter')
    await expect(page.getByTestId('history-entry')).toHaveCount(2)
    await expect(page.getByTestId('history-entry').nth(1)).toHaveAttribute('data-type', 'update')

    // Filters and pause.
    await page.getByTestId('filter-tab').uncheck()
    await expect(page.getByTestId('timeline-total')).toHaveText('1')
    await page.getByTestId('filter-tab').check()
    await page.getByTestId('timeline-pause').click()
    await other.evaluate(() => window.app.remove(1))
    await expect(page.getByTestId('timeline-held')).toHaveText('(1 held while paused)')
    await page.getByTestId('timeline-pause').click()
    await expect(page.getByTestId('event').first()).toHaveAttribute('data-type', 'delete')

    // Shadow DOM: the page's `button { color: red !important }` does not reach the panel,
    // and the panel's `.chip` colours do not reach the page.
    const inside = await page.getByTestId('timeline-pause').evaluate((el) => getComputedStyle(el).color)
    expect(inside).not.toBe('rgb(255, 0, 0)')
    const outside = await page.locator('body').evaluate(() => {
      const chip = document.createElement('span')
      chip.className = 'chip local'
      document.body.append(chip)
      return getComputedStyle(chip).color
    })
    expect(outside).toBe('rgb(0, 128, 0)')
    // No data through innerHTML: a value that looks like markup stays text.
    await other.evaluate(() => window.app.put(2, '<img src=x onerror="window.pwned=1">'))
    await expect(page.getByTestId('event').first()).toContainText('<img src=x')
    expect(await page.evaluate(() => (window as { pwned?: number }).pwned)).toBeUndefined()
  })
}

test('the panel loads only when mounted, and unmount removes it and its listeners', async ({ context }) => {
  const page = await context.newPage()
  await page.goto(`http://127.0.0.1:${harnessPort}/devtools/plain.html?nomount`)
  await expect(page.locator('body')).toHaveAttribute('data-ready', '')
  const panelLoaded = () =>
    page.evaluate(() => performance.getEntriesByType('resource').some((entry) => /\/panel\.[jt]s/.test(entry.name)))
  expect(await panelLoaded()).toBe(false)
  expect(await page.locator('[data-changecast-devtools]').count()).toBe(0)

  const result = await page.evaluate(async () => {
    const before = window.app.listeners()
    const handle = window.app.mount({ position: 'top-left' })
    await handle.ready
    const mounted = document.querySelectorAll('[data-changecast-devtools]').length
    const listening = window.app.listeners() > before
    handle.unmount()
    handle.unmount()
    return {
      mounted,
      listening,
      after: document.querySelectorAll('[data-changecast-devtools]').length,
      same: window.app.listeners() === before,
    }
  })
  expect(result).toEqual({ mounted: 1, listening: true, after: 0, same: true })
  expect(await panelLoaded()).toBe(true)
  // Bad options are refused with a clear error.
  const error = await page.evaluate(() => {
    try {
      window.app.mount({ position: 'middle' as never })
      return ''
    } catch (error) {
      return (error as Error).message
    }
  })
  expect(error).toBe(
    'mountDevtools: position must be one of bottom-right, bottom-left, top-right, top-left, got "middle".',
  )
})

test('devtools screenshot (artifact)', async ({ context }, testInfo) => {
  const page = await open(context, 'plain')
  const other = await open(context, 'plain')
  await page.setViewportSize({ width: 1100, height: 800 })
  await page.getByTestId('devtools-toggle').click()
  await other.evaluate(async () => {
    await window.app.put(10, 'first note')
    await window.app.put(10, 'first note, edited')
    await window.app.put(11, 'second note')
  })
  await page.evaluate(() => window.app.remove(11))
  await expect(page.getByTestId('timeline-total')).toHaveText('4')
  await page.getByTestId('event').nth(1).getByRole('button').click()
  await expect(page.getByTestId('history-entry')).toHaveCount(2)
  const path = testInfo.outputPath('devtools.png')
  await page.screenshot({ path })
  await testInfo.attach('devtools panel', { path, contentType: 'image/png' })
})
