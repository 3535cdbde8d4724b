import { expect, test } from '@playwright/test'
import { openPlayground } from './support'

test('two tabs side by side, after an edit crossed over (screenshot artifact)', async ({ context }, testInfo) => {
  const a = await openPlayground(context)
  const b = await openPlayground(context)
  for (const page of [a, b]) await page.setViewportSize({ width: 1100, height: 800 })
  await a.getByTestId('multi-table').click()
  await a.getByLabel('Title of task 2').fill('Edited in tab A')
  await a.getByLabel('Title of task 2').press('Enter')
  await expect(b.getByLabel('Title of task 2')).toHaveValue('Edited in tab A')

  const shots = await Promise.all([a.screenshot(), b.screenshot()])
  const sheet = await context.newPage()
  await sheet.setViewportSize({ width: 2220, height: 840 })
  const images = shots.map((shot) => `<img src="data:image/png;base64,${shot.toString('base64')}" width="1100">`)
  await sheet.setContent(
    `<body style="margin:0;display:flex;gap:20px;padding:20px;background:#1b1f24">${images.join('')}</body>`,
  )
  await expect(sheet.locator('img')).toHaveCount(2)
  const path = testInfo.outputPath('two-tabs.png')
  await sheet.screenshot({ path })
  await testInfo.attach('two tabs side by side', { path, contentType: 'image/png' })
})
