import { ChangecastStateError } from '../errors.js'
import type { SyncController, SyncStatus } from '../sync-port.js'
import type { ExternalStore } from './external-store.js'

/**
 * The feed's sync controller, for framework bindings of the sync status and rejections.
 * @throws {ChangecastStateError} naming `binding` when the feed has no `sync` option.
 */
export function syncOf(feed: { readonly sync?: SyncController }, binding: string): SyncController {
  if (!feed.sync) {
    throw new ChangecastStateError(
      `${binding}(): this feed has no server sync. Pass { sync: httpSync({ url }) } to changecast().`,
    )
  }
  return feed.sync
}

/** The sync status as an {@link ExternalStore}. */
export function syncStatusStore(sync: SyncController): ExternalStore<SyncStatus> {
  return { subscribe: (onChange) => sync.subscribe(onChange), getSnapshot: () => sync.status }
}

const functionIds = new WeakMap<object, number>()
let functions = 0

/**
 * A key for a binding's parameters: equal for parameters equal by value (JSON), with
 * functions in them (a `where` predicate) compared by identity. Bindings resubscribe when it
 * changes.
 */
export function parametersKey(value: unknown): string {
  return (
    JSON.stringify(value, (_key, item: unknown) => {
      if (typeof item !== 'function') return item
      if (!functionIds.has(item)) functionIds.set(item, ++functions)
      return `function ${functionIds.get(item)}`
    }) ?? String(typeof value)
  )
}
