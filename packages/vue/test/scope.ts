import Dexie, { type Table } from 'dexie'
import { effectScope } from 'vue'
import { expect, it, vi } from 'vitest'
import { changecast } from '@changecast/core'
import { useChangeEvent, useChanges, useEntity, useTable } from '@changecast/vue'

/** Vue-only rules: composables work in a bare effectScope and clean up when it stops. */
export function effectScopeSuite(): void {
  it('works inside effectScope() outside components, and cleans up when the scope stops', async () => {
    const db = new Dexie(`scope-${Date.now()}`) as Dexie & { todos: Table<{ id: number; title: string }, number> }
    db.version(1).stores({ todos: 'id' })
    const feed = changecast(db)
    await db.open()
    await db.todos.add({ id: 1, title: 'one' })
    try {
      const scope = effectScope()
      const seen: unknown[] = []
      const refs = scope.run(() => ({
        entity: useEntity('todos', 1, { feed }),
        table: useTable('todos', {}, { feed }),
        changes: useChanges('todos', { feed }),
        effect: useChangeEvent('todos', (e) => seen.push(e.key), { feed }),
      }))!
      await vi.waitFor(() => expect(refs.entity.value).toEqual({ id: 1, title: 'one' }))
      await db.todos.update(1, { title: 'uno' })
      await vi.waitFor(() => expect(refs.entity.value).toEqual({ id: 1, title: 'uno' }))
      expect(refs.table.value).toEqual([{ id: 1, title: 'uno' }])
      expect(refs.changes.value.map((e) => e.key)).toEqual([1])
      expect(seen).toEqual([1])
      expect(feed.listenerCount).toBeGreaterThan(0)
      scope.stop()
      expect(feed.listenerCount).toBe(0)
    } finally {
      feed.close()
      db.close()
      await Dexie.delete(db.name)
    }
  })
}
