// The msw entry: `import { syncHandlers } from '@changecast/testing/msw'`. Kept apart so the
// main entry does not load msw.
export { syncHandlers } from './handlers.js'
