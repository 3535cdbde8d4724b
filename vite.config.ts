import { fileURLToPath } from 'node:url'
import { playwright } from '@vitest/browser-playwright'
import { defineConfig } from 'vitest/config'
import { chromiumArgs } from './scripts/chromium.mjs'

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url))
const alias = {
  // More specific first: an alias also matches the paths below it.
  '@changecast/core/sync': source('./packages/core/src/sync/index.ts'),
  '@changecast/core/protocol': source('./packages/core/src/sync/protocol.ts'),
  '@changecast/server/node': source('./packages/server/src/node.ts'),
  '@changecast/server': source('./packages/server/src/index.ts'),
  '@changecast/core': source('./packages/core/src/index.ts'),
  '@changecast/react': source('./packages/react/src/index.ts'),
  '@changecast/vue': source('./packages/vue/src/index.ts'),
  '@changecast/testing': source('./packages/testing/src/index.ts'),
}

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          environment: 'node',
          include: ['packages/*/test/**/*.test.ts'],
          exclude: ['**/*.browser.test.ts', '**/node_modules/**'],
          setupFiles: ['fake-indexeddb/auto'],
          globalSetup: ['./scripts/vitest-postgres.ts'],
          typecheck: {
            enabled: true,
            include: ['packages/*/test/**/*.test-d.ts'],
            tsconfig: './tsconfig.json',
          },
        },
      },
      {
        extends: true,
        // Pre-bundle every dependency the browser tests import: a dependency discovered
        // mid-run makes Vite reload the page and fail the tests running at that moment.
        optimizeDeps: {
          include: [
            'dexie',
            'mitt',
            'vue',
            '@vue/test-utils',
            'react',
            'react-dom',
            'react-dom/client',
            'react/jsx-runtime',
            '@testing-library/react',
          ],
        },
        test: {
          name: 'browser',
          include: ['packages/*/test/**/*.browser.test.ts'],
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: playwright({
              launchOptions: {
                executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
                args: chromiumArgs,
              },
            }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
    ],
  },
})
