// Compiled by the Svelte plugin (runes): each probe is an effect root whose effect reads the
// binding's `current`, as a template would; a "render" is one run of that effect.
import { flushSync } from 'svelte'
import type { AnyTables, Feed } from '@changecast/core'
import type { Live } from '@changecast/svelte'
import type { Probe } from '../../core/test/conformance/bindings-spec.js'

export function probe<T, Args>(
  feed: Feed<AnyTables>,
  args: Args,
  create: (args: () => Args, feed: Feed<AnyTables>) => Live<T> | undefined,
): Probe<T, Args> {
  const state = $state({ args })
  let value: T
  let renders = 0
  const dispose = $effect.root(() => {
    const result = create(() => state.args, feed)
    $effect(() => {
      value = result ? result.current : (undefined as T)
      renders++
    })
  })
  // Effects run in a microtask; a component's first render is synchronous, so flush now.
  flushSync()
  return {
    value: () => value,
    renders: () => renders,
    async update(next) {
      state.args = next
      flushSync()
      await Promise.resolve()
    },
    unmount: dispose,
  }
}

/**
 * The Svelte idiom for a side effect per event (what React's useChangeEvent does): an
 * `$effect` that subscribes with `feed.on` and returns the unsubscribe.
 */
export function probeEvent<Args extends { filter: unknown; handler: (event: never) => void }>(
  feed: Feed<AnyTables>,
  args: Args,
): Probe<void, Args> {
  const state = $state({ filter: args.filter as string })
  let handler = args.handler as (event: unknown) => void
  const dispose = $effect.root(() => {
    $effect(() => feed.on(state.filter, (event) => handler(event)))
  })
  return {
    value: () => undefined,
    renders: () => 0,
    async update(next) {
      handler = next.handler as (event: unknown) => void
      if (next.filter !== state.filter) state.filter = next.filter as string
      await Promise.resolve()
    },
    unmount: dispose,
  }
}
