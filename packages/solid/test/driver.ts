import { createComponent, createRenderEffect, createRoot, createSignal, type Accessor } from 'solid-js'
import type { AnyTables, ChangeEvent, Feed } from '@changecast/core'
import type { BindingDriver, Probe } from '../../core/test/conformance/bindings-spec.js'
import {
  ChangecastProvider,
  createChangeEvent,
  createChanges,
  createEntity,
  createEntityState,
  createRejections,
  createSyncStatus,
  createTable,
} from '@changecast/solid'

/**
 * Runs `create(args)` under a `<ChangecastProvider>` in a root of its own, and an effect
 * that reads the returned accessor (a "render" each time it runs); arguments are a signal.
 */
function probe<T, Args>(
  feed: Feed<AnyTables>,
  args: Args,
  create: (args: Accessor<Args>) => Accessor<T> | void,
): Probe<T, Args> {
  let value: T
  let renders = 0
  const [current, setCurrent] = createSignal(args)
  const dispose = createRoot((dispose) => {
    createComponent(ChangecastProvider, {
      feed,
      get children() {
        const result = create(current)
        createRenderEffect(() => {
          value = result ? result() : (undefined as T)
          renders++
        })
        return undefined
      },
    })
    return dispose
  })
  return {
    value: () => value,
    renders: () => renders,
    async update(next) {
      setCurrent(() => next)
      await Promise.resolve()
    },
    unmount: dispose,
  }
}

export const solidDriver: BindingDriver = {
  name: 'Solid',
  entity: (feed, args) =>
    probe(feed, args, (a) =>
      createEntity(
        () => a().table,
        () => a().key,
      ),
    ),
  entityState: (feed, args) =>
    probe(feed, args, (a) =>
      createEntityState(
        () => a().table,
        () => a().key,
      ),
    ),
  table: (feed, args) =>
    probe(feed, args, (a) =>
      createTable(
        () => a().table,
        () => a().query ?? {},
      ),
    ),
  changes: (feed, args) =>
    probe(
      feed,
      args,
      (a) => createChanges(() => a().filter as string, { limit: args.limit }) as Accessor<readonly ChangeEvent[]>,
    ),
  // The handler read on each event is the latest one given; the filter resubscribes only
  // when its value changes.
  changeEvent: (feed, args) =>
    probe(feed, args, (a) =>
      createChangeEvent(
        () => a().filter as string,
        (e) => a().handler(e),
      ),
    ),
  syncStatus: (feed) => probe(feed, undefined, () => createSyncStatus()),
  rejections: (feed) => probe(feed, undefined, () => createRejections()),
  withoutFeed() {
    try {
      createRoot((dispose) => {
        createEntity('todos', 1)
        dispose()
      })
      return undefined
    } catch (error) {
      return error
    }
  },
}
