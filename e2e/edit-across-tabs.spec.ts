import { expect, test } from '@playwright/test'
import { openPlayground } from './support'

test('an edit in tab A appears in tab B: the entity and a tab-sourced event', async ({ context }) => {
  const a = await openPlayground(context)
  const b = await openPlayground(context)
  await expect(b.getByTestId('peer')).toHaveCount(1)

  await a.getByLabel('Title of task 1').fill('Renamed in tab A')
  await a.getByLabel('Title of task 1').press('Enter')

  await expect(b.getByLabel('Title of task 1')).toHaveValue('Renamed in tab A')
  const event = b.getByTestId('event').first()
  await expect(event).toHaveAttribute('data-type', 'update')
  await expect(event).toHaveAttribute('data-source', 'tab')
  await expect(event).toHaveAttribute('data-key', '1')
  await expect(event).toContainText('title: "Sketch the timeline" → "Renamed in tab A"')
  await expect(b.getByTestId('count-tab')).toHaveText('1')
  await expect(a.getByTestId('event').first()).toHaveAttribute('data-source', 'local')
})
