import { defineConfig } from '@playwright/test'
import { chromiumArgs } from './scripts/chromium.mjs'

const port = 5183
/** Serves `e2e/harness`, a bare page that exposes Changecast contexts to the specs. */
export const harnessPort = 5184

export default defineConfig({
  testDir: './e2e',
  testMatch: '**/*.spec.ts',
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  // The specs wait on events; these only end one that hangs, and leave room for a busy machine.
  timeout: 120_000,
  expect: { timeout: 30_000 },
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    browserName: 'chromium',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: chromiumArgs,
    },
    trace: 'retain-on-failure',
  },
  webServer: [
    {
      command: `vite playground --host 127.0.0.1 --port ${port} --strictPort`,
      url: `http://127.0.0.1:${port}`,
      reuseExistingServer: !process.env.CI,
      timeout: 180_000,
    },
    {
      command: `vite e2e/harness --host 127.0.0.1 --port ${harnessPort} --strictPort`,
      url: `http://127.0.0.1:${harnessPort}`,
      reuseExistingServer: !process.env.CI,
      timeout: 180_000,
    },
  ],
})
