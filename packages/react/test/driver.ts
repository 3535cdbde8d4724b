import { act, cleanup, render } from '@testing-library/react'
import { createElement, StrictMode, type ReactNode } from 'react'
import type { AnyTables, ChangeEvent, Feed } from '@changecast/core'
import type { BindingDriver, Probe } from '../../core/test/conformance/bindings-spec.js'
import {
  ChangecastProvider,
  useChangeEvent,
  useChanges,
  useEntity,
  useEntityState,
  useRejections,
  useSyncStatus,
  useTable,
} from '@changecast/react'

// Store notifications arrive from IndexedDB callbacks, outside act(): let React schedule
// them as it would in an app, and let the tests wait for the result.
;(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = false

/** Mounts `useHook(args)` in a component under a provider; records value and renders. */
function probe<T, Args>(feed: Feed<AnyTables>, args: Args, useHook: (args: Args) => T, strict = false): Probe<T, Args> {
  let value: T
  let renders = 0
  function Component(props: { args: Args }): ReactNode {
    value = useHook(props.args)
    renders++
    return null
  }
  const tree = (a: Args) => {
    const app = createElement(ChangecastProvider, { feed }, createElement(Component, { args: a }))
    return strict ? createElement(StrictMode, null, app) : app
  }
  const view = render(tree(args))
  return {
    value: () => value,
    renders: () => renders,
    async update(next) {
      await act(async () => {
        view.rerender(tree(next))
        await Promise.resolve()
      })
    },
    unmount: () => view.unmount(),
  }
}

export const reactDriver: BindingDriver = {
  name: 'React',
  entity: (feed, args) => probe(feed, args, (a) => useEntity(a.table, a.key)),
  entityState: (feed, args) => probe(feed, args, (a) => useEntityState(a.table, a.key)),
  table: (feed, args) => probe(feed, args, (a) => useTable(a.table, a.query)),
  changes: (feed, args) =>
    probe(feed, args, (a) => useChanges(a.filter as string, { limit: a.limit }) as readonly ChangeEvent[]),
  changeEvent: (feed, args) => probe(feed, args, (a) => useChangeEvent(a.filter as string, (e) => a.handler(e))),
  syncStatus: (feed) => probe(feed, undefined, () => useSyncStatus()),
  rejections: (feed) => probe(feed, undefined, () => useRejections()),
  withoutFeed() {
    function Orphan(): ReactNode {
      useEntity('todos', 1)
      return null
    }
    const spy = console.error
    console.error = () => {}
    try {
      render(createElement(Orphan))
      return undefined
    } catch (error) {
      return error
    } finally {
      console.error = spy
      cleanup()
    }
  },
}

export { probe }
