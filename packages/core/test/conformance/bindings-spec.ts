import Dexie, { type Table } from 'dexie'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { httpSync } from '@changecast/core/sync'
import { createSyncServer, type SyncServer } from '@changecast/testing'
import {
  changecast,
  type AnyTables,
  type ChangeEvent,
  type EntityState,
  type Feed,
  type SyncRejection,
  type SyncStatus,
  type TableQuery,
} from '@changecast/core'

export type Todo = { id: number; title: string; done: boolean; rank?: number }
export type BindingsDb = Dexie & { todos: Table<Todo, number>; notes: Table<{ id: number; text: string }, number> }
type AnyFeed = Feed<AnyTables>

/** A mounted component (or effect scope) that runs one hook, as seen from a test. */
export interface Probe<T, Args> {
  /** The hook's latest return value. */
  value(): T
  /** How many times the component rendered. */
  renders(): number
  /** Renders again with new arguments. */
  update(args: Args): Promise<void>
  unmount(): void
}

export interface EntityArgs {
  table: string
  key: number
}
export interface TableArgs {
  table: string
  query?: TableQuery<Todo>
}
export interface ChangesArgs {
  filter: string | Record<string, unknown>
  limit?: number
}
export interface ChangeEventArgs {
  filter: string | Record<string, unknown>
  handler: (event: ChangeEvent) => void
}

/**
 * How one framework binding mounts each hook. The behavioural spec below runs against
 * every binding through such a driver, so React and Vue are held to the same rules.
 */
export interface BindingDriver {
  name: string
  entity(feed: AnyFeed, args: EntityArgs): Probe<unknown, EntityArgs>
  /** Mounts `useEntityState`. */
  entityState(feed: AnyFeed, args: EntityArgs): Probe<EntityState<unknown>, EntityArgs>
  table(feed: AnyFeed, args: TableArgs): Probe<readonly unknown[], TableArgs>
  changes(feed: AnyFeed, args: ChangesArgs): Probe<readonly ChangeEvent[], ChangesArgs>
  changeEvent(feed: AnyFeed, args: ChangeEventArgs): Probe<void, ChangeEventArgs>
  /** Mounts `useSyncStatus`. */
  syncStatus(feed: AnyFeed): Probe<SyncStatus, undefined>
  /** Mounts `useRejections`. */
  rejections(feed: AnyFeed): Probe<readonly SyncRejection[], undefined>
  /** Mounts `useEntity` with neither provider nor feed argument; returns what it threw. */
  withoutFeed(): unknown
}

const todo = (id: number, extra: Partial<Todo> = {}): Todo => ({ id, title: `todo ${id}`, done: false, ...extra })

/**
 * Sends `fetch` calls under `base` to an in-memory sync server (what msw does, without a
 * service worker, so the same spec runs in Node and in the browser). Returns the undo.
 */
function serveThroughFetch(server: SyncServer, base: string): () => void {
  const original = globalThis.fetch
  globalThis.fetch = (input, init) => {
    const request = new Request(input, init)
    return request.url.startsWith(base) ? server.handle(request) : original(input, init)
  }
  return () => {
    globalThis.fetch = original
  }
}
let counter = 0

/** The behavioural spec of the framework bindings. */
export function bindingsConformance(driver: BindingDriver): void {
  describe(`${driver.name} bindings`, () => {
    let db: BindingsDb
    let feed: AnyFeed
    const reads = { query: 0, get: 0 }
    const probes: Array<{ unmount(): void }> = []
    const mount = <P extends { unmount(): void }>(probe: P): P => {
      probes.push(probe)
      return probe
    }

    beforeEach(async () => {
      db = new Dexie(`bindings-${driver.name}-${Date.now()}-${++counter}`) as BindingsDb
      db.version(1).stores({ todos: 'id, done', notes: 'id' })
      reads.query = 0
      reads.get = 0
      db.use({
        stack: 'dbcore',
        name: 'read-counter',
        create: (down) => ({
          ...down,
          table: (name) => {
            const table = down.table(name)
            if (name !== 'todos') return table
            return {
              ...table,
              // Value queries only: Dexie's update() itself queries keys.
              query: (req) => (req.values && reads.query++, table.query(req)),
              get: (req) => (reads.get++, table.get(req)),
            }
          },
        }),
      })
      feed = changecast(db) as unknown as AnyFeed
      await db.open()
      await db.todos.bulkAdd([todo(1), todo(2), todo(3, { done: true })])
    })

    afterEach(async () => {
      probes.splice(0).forEach((probe) => probe.unmount())
      feed.close()
      db.close()
      await Dexie.delete(db.name)
    })

    describe('useEntity', () => {
      it('is undefined while loading, then the entity, then follows its changes', async () => {
        const probe = mount(driver.entity(feed, { table: 'todos', key: 1 }))
        expect(probe.value()).toBeUndefined()
        await vi.waitFor(() => expect(probe.value()).toEqual(todo(1)))
        await db.todos.update(1, { title: 'changed' })
        await vi.waitFor(() => expect(probe.value()).toEqual(todo(1, { title: 'changed' })))
        await db.todos.delete(1)
        await vi.waitFor(() => expect(probe.value()).toBeUndefined())
        await db.todos.add(todo(1, { title: 'back' }))
        await vi.waitFor(() => expect(probe.value()).toEqual(todo(1, { title: 'back' })))
        expect(reads.get).toBe(1)
      })

      it('does not re-render when another key changes', async () => {
        const probe = mount(driver.entity(feed, { table: 'todos', key: 1 }))
        await vi.waitFor(() => expect(probe.value()).toEqual(todo(1)))
        const renders = probe.renders()
        await db.todos.update(2, { title: 'other' })
        await db.notes.add({ id: 1, text: 'other table' })
        await db.todos.update(1, { done: true })
        await vi.waitFor(() => expect(probe.value()).toEqual(todo(1, { done: true })))
        expect(probe.renders()).toBe(renders + 1)
      })

      it('follows another entity when its arguments change', async () => {
        const probe = mount(driver.entity(feed, { table: 'todos', key: 1 }))
        await vi.waitFor(() => expect(probe.value()).toEqual(todo(1)))
        await probe.update({ table: 'todos', key: 2 })
        await vi.waitFor(() => expect(probe.value()).toEqual(todo(2)))
        await db.todos.update(1, { title: 'old key' })
        await db.todos.update(2, { title: 'new key' })
        await vi.waitFor(() => expect(probe.value()).toEqual(todo(2, { title: 'new key' })))
      })

      it('follows changes committed in another context', async () => {
        const other = new Dexie(db.name) as BindingsDb
        other.version(1).stores({ todos: 'id, done', notes: 'id' })
        const otherFeed = changecast(other)
        await other.open()
        try {
          const probe = mount(driver.entity(feed, { table: 'todos', key: 2 }))
          await vi.waitFor(() => expect(probe.value()).toEqual(todo(2)))
          await other.todos.update(2, { title: 'from another tab' })
          await vi.waitFor(() => expect(probe.value()).toEqual(todo(2, { title: 'from another tab' })))
        } finally {
          otherFeed.close()
          other.close()
        }
      })
    })

    describe('useEntityState', () => {
      it('tells loading, found and missing apart, and follows changes', async () => {
        const probe = mount(driver.entityState(feed, { table: 'todos', key: 1 }))
        expect(probe.value()).toEqual({ status: 'loading', value: undefined })
        await vi.waitFor(() => expect(probe.value()).toEqual({ status: 'found', value: todo(1) }))
        await db.todos.update(1, { title: 'changed' })
        await vi.waitFor(() => expect(probe.value()).toEqual({ status: 'found', value: todo(1, { title: 'changed' }) }))
        await db.todos.delete(1)
        await vi.waitFor(() => expect(probe.value()).toEqual({ status: 'missing', value: undefined }))
        await probe.update({ table: 'todos', key: 99 })
        await vi.waitFor(() => expect(probe.value()).toEqual({ status: 'missing', value: undefined }))
        await db.todos.add(todo(99))
        await vi.waitFor(() => expect(probe.value()).toEqual({ status: 'found', value: todo(99) }))
      })

      it('does not re-render when another key changes, and keeps its snapshot while nothing changes', async () => {
        const probe = mount(driver.entityState(feed, { table: 'todos', key: 2 }))
        await vi.waitFor(() => expect(probe.value().status).toBe('found'))
        const [renders, snapshot] = [probe.renders(), probe.value()]
        await db.todos.update(1, { title: 'other' })
        await db.notes.add({ id: 2, text: 'other table' })
        await new Promise((resolve) => setTimeout(resolve, 20))
        expect(probe.renders()).toBe(renders)
        expect(probe.value()).toBe(snapshot)
      })
    })

    describe('useTable', () => {
      it('loads the rows once, then follows creates, updates and deletes without re-querying', async () => {
        const probe = mount(driver.table(feed, { table: 'todos' }))
        await vi.waitFor(() => expect(probe.value()).toEqual([todo(1), todo(2), todo(3, { done: true })]))
        const queries = reads.query
        await db.todos.add(todo(4))
        await db.todos.update(2, { title: 'two' })
        await db.todos.delete(1)
        await vi.waitFor(() =>
          expect(probe.value()).toEqual([todo(2, { title: 'two' }), todo(3, { done: true }), todo(4)]),
        )
        expect(reads.query).toBe(queries)
      })

      it('warns once when no row has the orderBy field and it is not an index, and sorts by key', async () => {
        const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
        try {
          const probe = mount(
            driver.table(feed, { table: 'todos', query: { orderBy: 'titel' as 'title', reverse: true } }),
          )
          await vi.waitFor(() => expect(probe.value()).toEqual([todo(3, { done: true }), todo(2), todo(1)]))
          await db.todos.add(todo(4))
          await vi.waitFor(() => expect(probe.value()).toHaveLength(4))
          expect(warn.mock.calls.map((call) => String(call[0]))).toEqual([
            "[changecast] orderBy 'titel': no todos row has this field and it is not an index; rows are sorted by primary key. A typo?",
          ])
        } finally {
          warn.mockRestore()
        }
      })

      it('applies where, orderBy, reverse and limit', async () => {
        await db.todos.bulkPut([todo(4, { rank: 2 }), todo(5, { rank: 1 }), todo(6, { rank: 3, done: true })])
        const probe = mount(
          driver.table(feed, {
            table: 'todos',
            query: { where: { done: false }, orderBy: 'rank', reverse: true, limit: 2 },
          }),
        )
        await vi.waitFor(() => expect(probe.value().map((t) => (t as Todo).id)).toEqual([4, 5]))
        await db.todos.update(1, { rank: 9 })
        await vi.waitFor(() => expect(probe.value().map((t) => (t as Todo).id)).toEqual([1, 4]))
        await db.todos.update(1, { done: true })
        await vi.waitFor(() => expect(probe.value().map((t) => (t as Todo).id)).toEqual([4, 5]))
        await probe.update({ table: 'todos', query: { where: { done: true } } })
        await vi.waitFor(() => expect(probe.value().map((t) => (t as Todo).id)).toEqual([1, 3, 6]))
      })

      it('does not re-render for changes outside its rows, and keeps unchanged rows identical', async () => {
        const probe = mount(driver.table(feed, { table: 'todos', query: { where: { done: false } } }))
        await vi.waitFor(() => expect(probe.value()).toHaveLength(2))
        const before = probe.value()
        const renders = probe.renders()
        await db.todos.update(3, { title: 'done and hidden' })
        await db.notes.add({ id: 1, text: 'other table' })
        await db.todos.update(2, { title: 'visible' })
        await vi.waitFor(() => expect(probe.value()[1]).toEqual(todo(2, { title: 'visible' })))
        expect(probe.renders()).toBe(renders + 1)
        expect(probe.value()[0]).toBe(before[0])
      })

      it('renders once when one row of 1,000 changes', async () => {
        await db.todos.bulkPut(Array.from({ length: 1000 }, (_, i) => todo(i + 1)))
        const probe = mount(driver.table(feed, { table: 'todos' }))
        await vi.waitFor(() => expect(probe.value()).toHaveLength(1000))
        const before = probe.value()
        const renders = probe.renders()
        await db.todos.update(500, { title: 'the one' })
        await vi.waitFor(() => expect((probe.value()[499] as Todo).title).toBe('the one'))
        expect(probe.renders() - renders).toBe(1)
        const kept = probe.value().filter((row, i) => row === before[i]).length
        expect(kept).toBe(999)
        console.info(
          `[${driver.name}] useTable, 1,000 rows, one row changed: ${probe.renders() - renders} render, ${kept} rows kept`,
        )
      })
    })

    describe('useChanges', () => {
      it('keeps the most recent matching events, newest first', async () => {
        const probe = mount(driver.changes(feed, { filter: { table: 'todos', type: 'update' }, limit: 2 }))
        await db.todos.update(1, { title: 'a' })
        await db.todos.add(todo(9))
        await db.todos.update(2, { title: 'b' })
        await db.todos.update(3, { title: 'c' })
        await vi.waitFor(() => expect(probe.value().map((e) => e.key)).toEqual([3, 2]))
        expect(probe.value().every((e) => e.type === 'update')).toBe(true)
        await probe.update({ filter: 'notes' })
        await db.notes.add({ id: 1, text: 'n' })
        await vi.waitFor(() =>
          expect(probe.value().map((e) => `${e.table} ${JSON.stringify(e.key)}`)).toEqual(['notes 1']),
        )
      })
    })

    describe('useChangeEvent', () => {
      it('calls the latest handler, without resubscribing', async () => {
        const first: unknown[] = []
        const second: unknown[] = []
        const probe = mount(driver.changeEvent(feed, { filter: 'todos', handler: (e) => first.push(e.key) }))
        await db.todos.update(1, { title: 'x' })
        await vi.waitFor(() => expect(first).toEqual([1]))
        const listeners = feed.listenerCount
        await probe.update({ filter: 'todos', handler: (e) => second.push(e.key) })
        expect(feed.listenerCount).toBe(listeners)
        await db.todos.update(2, { title: 'y' })
        await vi.waitFor(() => expect(second).toEqual([2]))
        expect(first).toEqual([1])
      })
    })

    it('releases every subscription on unmount', async () => {
      const before = feed.listenerCount
      const all = [
        driver.entity(feed, { table: 'todos', key: 1 }),
        driver.table(feed, { table: 'todos' }),
        driver.changes(feed, { filter: '*' }),
        driver.changeEvent(feed, { filter: 'todos', handler: () => {} }),
      ]
      await vi.waitFor(() => expect(all[0]!.value()).toEqual(todo(1)))
      expect(feed.listenerCount).toBeGreaterThan(before)
      all.forEach((probe) => probe.unmount())
      // At once in React and Vue; Svelte's subscribers end one microtask after their last reader.
      await vi.waitFor(() => expect(feed.listenerCount).toBe(before))
    })

    it('useSyncStatus follows the sync status', async () => {
      // A server nobody listens on: every request fails, so the status moves by itself.
      const offline = new Dexie(`${db.name}-sync`) as BindingsDb
      offline.version(1).stores({ todos: 'id' })
      const syncing = changecast(offline, {
        channel: false,
        sync: httpSync({ url: 'http://127.0.0.1:9/changecast', pull: false, backoff: { base: 20, cap: 50 } }),
      }) as unknown as AnyFeed
      const errors: unknown[] = []
      syncing.sync!.onError((error) => errors.push(error))
      await offline.open()
      try {
        const probe = mount(driver.syncStatus(syncing))
        await vi.waitFor(() => expect(probe.value().leader).toBe(true))
        await offline.todos.put(todo(1))
        await vi.waitFor(() => expect(probe.value()).toMatchObject({ outbox: 1, state: 'offline' }))
        expect(probe.value().lastError).toMatchObject({
          reason: 'network',
          message: expect.stringMatching(/Could not reach/),
        })
        expect(errors.length).toBeGreaterThan(0)
        syncing.sync!.pause()
        await vi.waitFor(() => expect(probe.value().paused).toBe(true))
      } finally {
        syncing.close()
        offline.close()
        await Dexie.delete(offline.name)
      }
    })

    it('useRejections lists the rejections, in order, and drops a dismissed one', async () => {
      const base = `${globalThis.location?.origin ?? 'http://127.0.0.1'}/conformance-sync-${driver.name}`
      const server = createSyncServer({
        reject: (change) => ((change.value as Todo).title === 'no' ? 'not allowed' : undefined),
      })
      const restore = serveThroughFetch(server, base)
      const other = new Dexie(`${db.name}-rejections`) as BindingsDb
      other.version(1).stores({ todos: 'id' })
      const syncing = changecast(other, {
        channel: false,
        sync: httpSync({ url: base, pull: false }),
      }) as unknown as AnyFeed
      syncing.sync!.onRejected(() => {})
      await other.open()
      try {
        const probe = mount(driver.rejections(syncing))
        expect(probe.value()).toEqual([])
        await other.todos.put(todo(1, { title: 'no' }))
        await other.todos.put(todo(2, { title: 'no' }))
        await syncing.sync!.flush()
        await vi.waitFor(() =>
          expect(probe.value().map((r) => [r.rev, r.reason])).toEqual([
            [1, 'not allowed'],
            [2, 'not allowed'],
          ]),
        )
        await syncing.sync!.dismiss(1)
        await vi.waitFor(() => expect(probe.value().map((r) => r.rev)).toEqual([2]))
        probe.unmount()
      } finally {
        restore()
        syncing.close()
        other.close()
        await Dexie.delete(other.name)
      }
    })

    it('throws a clear error without a feed', () => {
      const error = driver.withoutFeed()
      expect(error).toBeInstanceOf(Error)
      expect((error as Error).message).toMatch(/no Changecast feed/)
    })
  })
}
