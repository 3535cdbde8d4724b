import Dexie, { type Table } from 'dexie'
import { expect, it, vi } from 'vitest'
import { changecast, type AnyTables, type Feed } from '@changecast/core'
import { useChangeEvent, useChanges, useEntity, useTable } from '@changecast/react'
import { probe } from './driver.js'

/** React-only rules: StrictMode's double mount leaks nothing. */
export function strictModeSuite(): void {
  it('leaks no listener through StrictMode double mounting', async () => {
    const db = new Dexie(`strict-${Date.now()}`) as Dexie & { todos: Table<{ id: number; title: string }, number> }
    db.version(1).stores({ todos: 'id' })
    const feed = changecast(db) as unknown as Feed<AnyTables>
    await db.open()
    await db.todos.add({ id: 1, title: 'one' })
    try {
      const probes = [
        probe(feed, 1, (key) => useEntity('todos', key), true),
        probe(feed, 'todos', (table) => useTable(table), true),
        probe(feed, '*', (topic) => useChanges(topic), true),
        probe(feed, 'todos', (topic) => useChangeEvent(topic, () => {}), true),
      ]
      await vi.waitFor(() => expect(probes[0]!.value()).toEqual({ id: 1, title: 'one' }))
      // One live subscription per hook, whatever StrictMode mounted and unmounted.
      expect(feed.listenerCount).toBe(
        1 /* entity: key filter */ + 1 /* entity: resync */ + 2 /* table: batches + resync */ + 1 + 1,
      )
      await db.todos.update(1, { title: 'uno' })
      await vi.waitFor(() => expect(probes[0]!.value()).toEqual({ id: 1, title: 'uno' }))
      probes.forEach((p) => p.unmount())
      expect(feed.listenerCount).toBe(0)
    } finally {
      feed.close()
      db.close()
      await Dexie.delete(db.name)
    }
  })
}
