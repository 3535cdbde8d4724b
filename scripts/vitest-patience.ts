// Vitest setup: the suites wait on events, and a timeout only ends a test that hangs. So
// that a busy machine (CI beside other jobs, two cores under load) fails nothing, the
// waits that have no timeout of their own get a generous one: `vi.waitFor` (1 s by
// default) 30 s. The tests' own timeouts and `expect.poll`'s are set in vite.config.ts.
import { vi } from 'vitest'

const waitFor = vi.waitFor.bind(vi)
vi.waitFor = ((callback: Parameters<typeof waitFor>[0], options?: Parameters<typeof waitFor>[1]) =>
  waitFor(callback, typeof options === 'number' ? options : { timeout: 30_000, ...options })) as typeof vi.waitFor
