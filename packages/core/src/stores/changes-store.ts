import type { Feed } from '../changecast.js'
import type { AnyTables, ChangeEvent, ChangeFilter, Topic } from '../types.js'
import { lazyStore, type ExternalStore } from './external-store.js'

/**
 * The most recent events matching a topic or filter, newest first, at most `limit`
 * (for activity feeds and timelines). Starts empty when the first subscriber comes.
 * @throws {InvalidFilterError} for an invalid topic or filter (when subscribed).
 */
export function changesStore(
  feed: Feed<AnyTables>,
  filter: Topic | ChangeFilter,
  { limit = 50 }: { limit?: number } = {},
): ExternalStore<readonly ChangeEvent[]> {
  let events: readonly ChangeEvent[] = []
  return lazyStore(
    () => events,
    (notify) =>
      feed.on(filter as Topic, (event) => {
        events = [event, ...events.slice(0, Math.max(0, limit - 1))]
        notify()
      }),
  )
}
