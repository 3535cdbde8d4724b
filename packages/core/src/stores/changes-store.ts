import type { Feed } from '../changecast.js'
import type { ChangeFilter, EventOf, TableName, Topic } from '../types.js'
import { lazyStore, type ExternalStore } from './external-store.js'

/**
 * The most recent events matching a topic or filter, newest first, at most `limit`
 * (for activity feeds and timelines). Starts empty when the first subscriber comes.
 * @throws {InvalidFilterError} for an invalid topic or filter (when subscribed).
 */
export function changesStore<Tables, N extends TableName<Tables> = TableName<Tables>>(
  feed: Feed<Tables>,
  filter: Topic<Tables, N> | ChangeFilter<Tables, N>,
  { limit = 50 }: { limit?: number } = {},
): ExternalStore<readonly EventOf<Tables, N>[]> {
  let events: readonly EventOf<Tables, N>[] = []
  return lazyStore(
    () => events,
    (notify) =>
      feed.on(filter, (event) => {
        events = [event, ...events.slice(0, Math.max(0, limit - 1))]
        notify()
      }),
  )
}
