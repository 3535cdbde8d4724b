import { fileURLToPath } from 'node:url'
import { svelte } from '@sveltejs/vite-plugin-svelte'
import { playwright } from '@vitest/browser-playwright'
import { defineConfig } from 'vitest/config'
import { chromiumArgs } from './scripts/chromium.mjs'
import { workspaceAliases as alias } from './scripts/aliases.ts'

const solidClient = fileURLToPath(new URL('./packages/solid/node_modules/solid-js/dist/solid.js', import.meta.url))

export default defineConfig({
  resolve: { alias },
  test: {
    // Tests wait on events; a timeout only ends one that hangs, so it is generous enough for
    // a busy machine (see scripts/vitest-patience.ts).
    testTimeout: 120_000,
    hookTimeout: 120_000,
    expect: { poll: { timeout: 30_000 } },
    projects: [
      {
        extends: true,
        resolve: {
          // Solid's "node" export is its server build, which does not react: tests run the client one.
          alias: [{ find: /^solid-js$/, replacement: solidClient }],
        },
        test: {
          name: 'unit',
          environment: 'node',
          include: ['packages/*/test/**/*.test.ts'],
          exclude: ['**/*.browser.test.ts', '**/node_modules/**', 'packages/svelte/**'],
          setupFiles: ['fake-indexeddb/auto', './scripts/vitest-patience.ts'],
          globalSetup: ['./scripts/vitest-build.ts', './scripts/vitest-postgres.ts'],
          typecheck: {
            enabled: true,
            include: ['packages/*/test/**/*.test-d.ts'],
            tsconfig: './tsconfig.json',
          },
        },
      },
      {
        // pnpm test:sim (scripts/sim.mjs): the simulation at volume, one process per core.
        extends: true,
        test: {
          name: 'sim',
          environment: 'node',
          include: ['packages/core/test/sim/*.sim.ts'],
          setupFiles: ['fake-indexeddb/auto'],
        },
      },
      {
        extends: true,
        // Svelte components and runes modules, compiled; the client build of svelte (its
        // "default" export is the server build, where effects never run).
        plugins: [svelte()],
        resolve: { conditions: ['browser'] },
        test: {
          name: 'svelte',
          environment: 'happy-dom',
          include: ['packages/svelte/test/**/*.test.ts'],
          exclude: ['**/*.browser.test.ts'],
          setupFiles: ['fake-indexeddb/auto', './scripts/vitest-patience.ts'],
        },
      },
      {
        extends: true,
        plugins: [svelte()],
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
            'solid-js',
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
