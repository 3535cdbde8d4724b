// Helpers for the sync suites (Node + fake-indexeddb + msw).
import Dexie, { type Table } from 'dexie'
import type { setupServer } from 'msw/node'
import {
  changecast,
  type ChangeEvent,
  type Feed,
  type SyncError,
  type SyncRejection,
  type TableMap,
} from '@changecast/core'
import { httpSync, setAsideActions, userSwitching, type HttpSyncOptions } from '@changecast/core/sync'
import type { SyncServer } from '@changecast/testing'
import { syncHandlers } from '@changecast/testing/msw'

export type Todo = { id: number; title: string; done?: boolean }
export type SyncDb = Dexie & { todos: Table<Todo, number>; events: Table<{ when: Date; what: string }, Date> }

export const BASE = 'https://sync.test/api'
let counter = 0

export interface Client {
  db: SyncDb
  feed: Feed<TableMap<SyncDb>>
  sync: NonNullable<Feed['sync']>
  events: ChangeEvent[]
  errors: SyncError[]
  rejections: SyncRejection[]
  close(): void
}

/** Closes every client a test opened and deletes their databases. */
export const opened: Client[] = []
export async function closeAll(): Promise<void> {
  for (const client of opened.splice(0)) client.close()
  await Promise.all([...new Set(namesToDelete.splice(0))].map((name) => Dexie.delete(name)))
}
const namesToDelete: string[] = []

/**
 * A context (a tab) of a client: a Dexie instance with a feed syncing to `url`. Contexts
 * opened with the same `name` are tabs of one client (one browser profile).
 */
export async function openClient(
  options: Partial<HttpSyncOptions> & {
    name?: string
    channel?: false
    server?: SyncServer
    mock?: ReturnType<typeof setupServer>
  } = {},
): Promise<Client> {
  const { name = `sync-${Date.now()}-${++counter}`, channel, server, mock, ...sync } = options
  const url = sync.url ?? BASE
  if (server && mock) mock.use(...syncHandlers(server, url))
  const db = new Dexie(name) as SyncDb
  db.version(1).stores({ todos: 'id', events: 'when' })
  const feed = changecast(db, {
    ...(channel === false ? { channel: false } : {}),
    // Every part: the tests of signOut(), retry() and drop() use them.
    sync: httpSync({
      pull: 'poll',
      interval: 20,
      backoff: { base: 5, cap: 40 },
      users: userSwitching,
      setAside: setAsideActions,
      ...sync,
      url,
    }),
  })
  const events: ChangeEvent[] = []
  const errors: SyncError[] = []
  const rejections: SyncRejection[] = []
  feed.on('*', (event) => events.push(event as ChangeEvent))
  feed.sync!.onError((error) => errors.push(error))
  feed.sync!.onRejected((rejection) => rejections.push(rejection))
  await db.open()
  namesToDelete.push(name)
  const client: Client = {
    db,
    feed,
    sync: feed.sync!,
    events,
    errors,
    rejections,
    close() {
      feed.close()
      db.close()
    },
  }
  opened.push(client)
  return client
}

/** Waits until `check` passes (it may throw or return false), polling. */
export async function until(check: () => unknown, { timeout = 60_000, what = 'a condition' } = {}) {
  const end = Date.now() + timeout
  let last: unknown
  for (;;) {
    try {
      if ((await check()) !== false) return
    } catch (error) {
      last = error
    }
    if (Date.now() > end)
      throw new Error(`Timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Seeded randomness (a linear congruential generator), for reproducible runs. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0 || 1
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

/**
 * Web Locks for Node (exclusive mode, `signal`), so that several contexts in one process
 * elect one sync leader as browser tabs do. Installed on `navigator.locks` by
 * {@link installBrowserGlobals}.
 */
export class LockManagerForNode {
  private readonly held = new Set<string>()
  private readonly queues = new Map<string, Array<() => void>>()

  async request(name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>): Promise<void> {
    const { signal } = options
    await new Promise<void>((resolve, reject) => {
      const take = (): void => {
        signal?.removeEventListener('abort', abort)
        this.held.add(name)
        resolve()
      }
      const abort = (): void => {
        const queue = this.queues.get(name) ?? []
        const index = queue.indexOf(take)
        if (index !== -1) queue.splice(index, 1)
        reject(new DOMException('The lock request was aborted.', 'AbortError'))
      }
      if (signal?.aborted) return abort()
      if (!this.held.has(name)) return take()
      signal?.addEventListener('abort', abort)
      this.queues.set(name, [...(this.queues.get(name) ?? []), take])
    })
    try {
      await callback()
    } finally {
      this.held.delete(name)
      this.queues.get(name)?.shift()?.()
    }
  }
}

/**
 * Gives Node what the sync uses in browsers: `navigator.locks`, `navigator.onLine` and
 * window `online`/`offline` events. Returns `setOnline(boolean)` and a function that
 * removes the globals.
 */
export function installBrowserGlobals(): { setOnline(online: boolean): void; uninstall(): void } {
  const target = new EventTarget()
  const state = { onLine: true }
  const globals = globalThis as Record<string, unknown>
  const saved = { navigator: globals.navigator, add: globals.addEventListener, remove: globals.removeEventListener }
  Object.defineProperty(globalThis, 'navigator', {
    configurable: true,
    value: {
      locks: new LockManagerForNode(),
      get onLine() {
        return state.onLine
      },
    },
  })
  globals.addEventListener = target.addEventListener.bind(target)
  globals.removeEventListener = target.removeEventListener.bind(target)
  return {
    setOnline(online) {
      state.onLine = online
      target.dispatchEvent(new Event(online ? 'online' : 'offline'))
    },
    uninstall() {
      Object.defineProperty(globalThis, 'navigator', { configurable: true, value: saved.navigator })
      globals.addEventListener = saved.add
      globals.removeEventListener = saved.remove
    },
  }
}
