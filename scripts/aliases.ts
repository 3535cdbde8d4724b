// Every @changecast/* import resolved to its package's sources, for the Vite configs (tests,
// playground, e2e harness): edits show up without a build.
import { fileURLToPath } from 'node:url'

const source = (path: string) => fileURLToPath(new URL(`../packages/${path}`, import.meta.url))

/** More specific first: an alias also matches the paths below it. */
export const workspaceAliases: Record<string, string> = {
  '@changecast/core/sync': source('core/src/sync/index.ts'),
  '@changecast/core/protocol': source('core/src/sync/protocol.ts'),
  '@changecast/server/node': source('server/src/node.ts'),
  '@changecast/server': source('server/src/index.ts'),
  '@changecast/core': source('core/src/index.ts'),
  '@changecast/react': source('react/src/index.ts'),
  '@changecast/vue': source('vue/src/index.ts'),
  '@changecast/solid': source('solid/src/index.ts'),
  '@changecast/svelte': source('svelte/src/index.ts'),
  '@changecast/devtools/react': source('devtools/src/react.ts'),
  '@changecast/devtools/vue': source('devtools/src/vue.ts'),
  '@changecast/devtools': source('devtools/src/index.ts'),
  '@changecast/testing/msw': source('testing/src/msw.ts'),
  '@changecast/testing/vite': source('testing/src/vite.ts'),
  '@changecast/testing': source('testing/src/index.ts'),
}
