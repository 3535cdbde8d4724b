import Dexie, { type Table } from 'dexie'
import { flushSync, mount, unmount } from 'svelte'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { changecast, ChangecastStateError, type AnyTables, type Feed } from '@changecast/core'
import { entity } from '@changecast/svelte'
import Parent from './fixtures/Parent.svelte'

type Todo = { id: number; title: string; done: boolean }
let counter = 0

/** Real components: the feed from setChangecastContext, `current` in markup and `$store`. */
export function componentSuite(): void {
  describe('Svelte components', () => {
    const cleanup: Array<() => unknown> = []
    afterEach(async () => {
      for (const step of cleanup.splice(0).reverse()) await step()
    })

    it('read the feed from setChangecastContext, render `current` and `$store`, follow changes, and unsubscribe on unmount', async () => {
      const db = new Dexie(`svelte-components-${++counter}-${Date.now()}`) as Dexie & { todos: Table<Todo, number> }
      db.version(1).stores({ todos: 'id' })
      const feed = changecast(db) as unknown as Feed<AnyTables>
      cleanup.push(
        () => Dexie.delete(db.name),
        () => db.close(),
        () => feed.close(),
      )
      await db.todos.bulkAdd([
        { id: 1, title: 'one', done: false },
        { id: 2, title: 'two', done: true },
      ])
      const target = document.createElement('div')
      document.body.append(target)
      const before = feed.listenerCount
      const component = mount(Parent, { target, props: { feed, id: 1 } })
      cleanup.push(
        () => target.remove(),
        () => unmount(component),
      )
      const title = () => target.querySelector('[data-testid="title"]')?.textContent
      const items = () => [...target.querySelectorAll('li')].map((li) => li.textContent)
      await vi.waitFor(() => expect([title(), items()]).toEqual(['one', ['one']]))
      await db.todos.update(1, { title: 'changed' })
      await db.todos.update(2, { done: false })
      await vi.waitFor(() => expect([title(), items()]).toEqual(['changed', ['changed', 'two']]))
      expect(feed.listenerCount).toBeGreaterThan(before)
      await unmount(component)
      flushSync()
      await vi.waitFor(() => expect(feed.listenerCount).toBe(before))
    })

    it('outside a component and without { feed }, a binding throws a ChangecastStateError that says what to do', () => {
      expect(() => entity('todos', 1)).toThrow(ChangecastStateError)
      expect(() => entity('todos', 1)).toThrow(/setChangecastContext\(feed\)/)
    })
  })
}
