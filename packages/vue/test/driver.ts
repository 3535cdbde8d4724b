import { mount } from '@vue/test-utils'
import { defineComponent, h, nextTick, type PropType } from 'vue'
import type { AnyTables, ChangeEvent, Feed } from '@changecast/core'
import type { BindingDriver, Probe } from '../../core/test/conformance/bindings-spec.js'
import {
  changecastPlugin,
  useChangeEvent,
  useChanges,
  useEntity,
  useEntityState,
  useRejections,
  useSyncStatus,
  useTable,
} from '@changecast/vue'

/**
 * Mounts a component whose setup calls `useComposable(() => props.args)` and whose render
 * reads the returned ref; records value and renders.
 */
function probe<T, Args>(
  feed: Feed<AnyTables>,
  args: Args,
  useComposable: (args: () => Args) => { readonly value: T } | void,
): Probe<T, Args> {
  let value: T
  let renders = 0
  const Component = defineComponent({
    props: { args: { type: Object as PropType<{ current: Args }>, required: true } },
    setup(props) {
      const result = useComposable(() => props.args.current)
      return () => {
        renders++
        value = result ? result.value : (undefined as T)
        return h('div')
      }
    },
  })
  const wrapper = mount(Component, {
    props: { args: { current: args } },
    global: { plugins: [[changecastPlugin, feed]] },
  })
  return {
    value: () => value,
    renders: () => renders,
    async update(next) {
      await wrapper.setProps({ args: { current: next } })
      await nextTick()
    },
    unmount: () => wrapper.unmount(),
  }
}

export const vueDriver: BindingDriver = {
  name: 'Vue',
  entity: (feed, args) =>
    probe(feed, args, (a) =>
      useEntity(
        () => a().table,
        () => a().key,
      ),
    ),
  entityState: (feed, args) =>
    probe(feed, args, (a) =>
      useEntityState(
        () => a().table,
        () => a().key,
      ),
    ),
  table: (feed, args) =>
    probe(feed, args, (a) =>
      useTable(
        () => a().table,
        () => a().query ?? {},
      ),
    ),
  changes: (feed, args) =>
    probe(
      feed,
      args,
      (a) =>
        useChanges(() => a().filter as string, { limit: args.limit }) as { readonly value: readonly ChangeEvent[] },
    ),
  // Vue runs setup once, so the handler given at mount is the one called; a new handler
  // through props is read on each event to honour "the latest handler".
  changeEvent: (feed, args) =>
    probe(feed, args, (a) =>
      useChangeEvent(
        () => a().filter as string,
        (e) => a().handler(e),
      ),
    ),
  syncStatus: (feed) => probe(feed, undefined, () => useSyncStatus()),
  rejections: (feed) => probe(feed, undefined, () => useRejections()),
  withoutFeed() {
    const Orphan = defineComponent({
      setup() {
        useEntity('todos', 1)
        return () => h('div')
      },
    })
    try {
      mount(Orphan, { global: { config: { warnHandler: () => {} } } })
      return undefined
    } catch (error) {
      return error
    }
  },
}
