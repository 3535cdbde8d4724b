import type { BindingDriver } from '../../core/test/conformance/bindings-spec.js'
import { changes, entity, entityState, getFeed, rejections, syncStatus, table } from '@changecast/svelte'
import { probe, probeEvent } from './probe.svelte.js'

// Outside components there is no context: every binding gets the feed as an option (the
// context is covered by component tests).
export const svelteDriver: BindingDriver = {
  name: 'Svelte',
  entity: (feed, args) =>
    probe(feed, args, (a, f) =>
      entity(
        () => a().table,
        () => a().key,
        { feed: f },
      ),
    ),
  entityState: (feed, args) =>
    probe(feed, args, (a, f) =>
      entityState(
        () => a().table,
        () => a().key,
        { feed: f },
      ),
    ),
  table: (feed, args) =>
    probe(feed, args, (a, f) =>
      table(
        () => a().table,
        () => a().query ?? {},
        { feed: f },
      ),
    ),
  changes: (feed, args) =>
    probe(feed, args, (a, f) => changes(() => a().filter as string, { feed: f, limit: args.limit })),
  // Svelte has no event primitive: an $effect over `feed.on` is the idiom, with the latest
  // handler read on each event.
  changeEvent: (feed, args) => probeEvent(feed, args),
  syncStatus: (feed) => probe(feed, undefined, (_a, f) => syncStatus({ feed: f })),
  rejections: (feed) => probe(feed, undefined, (_a, f) => rejections({ feed: f })),
  withoutFeed() {
    try {
      getFeed(undefined, 'entity')
      return undefined
    } catch (error) {
      return error
    }
  },
}
