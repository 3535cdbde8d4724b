import type { Unsubscribe } from '../types.js'

/**
 * A value that changes over time, in the shape React's `useSyncExternalStore` (and any
 * other binding) expects: `getSnapshot()` returns the same reference until the value
 * changes, and `subscribe()` calls back after each change. A store only listens to the
 * feed while it has subscribers, so an unused store holds no listener.
 */
export interface ExternalStore<T> {
  readonly subscribe: (onChange: () => void) => Unsubscribe
  readonly getSnapshot: () => T
}

/**
 * Builds a store from `start`, which begins listening when the first subscriber comes and
 * returns the function that stops when the last one leaves.
 */
export function lazyStore<T>(getSnapshot: () => T, start: (notify: () => void) => Unsubscribe): ExternalStore<T> {
  const listeners = new Set<() => void>()
  let stop: Unsubscribe | undefined
  const notify = (): void => {
    for (const listener of [...listeners]) listener()
  }
  return {
    getSnapshot,
    subscribe(onChange) {
      listeners.add(onChange)
      stop ??= start(notify)
      return () => {
        if (!listeners.delete(onChange) || listeners.size > 0) return
        stop?.()
        stop = undefined
      }
    },
  }
}
