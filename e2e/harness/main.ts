// The page side of the end-to-end harness: exposes `window.harness` to Playwright.
import Dexie from 'dexie'
import { setupWorker } from 'msw/browser'
import { changecast } from '@changecast/core'
import { httpSync } from '@changecast/core/sync'
import { createSyncServer } from '@changecast/testing'
import { syncHandlers } from '@changecast/testing/msw'
import { openContext, type Context } from './context'
import { lifecycle } from './life'
import { merging } from './merge'

let context: Context | undefined
let worker: Worker | undefined
let calls = 0
const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()

function callWorker(cmd: string, ...args: unknown[]): Promise<unknown> {
  const id = ++calls
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject })
    worker!.postMessage({ id, cmd, args })
  })
}

/** Syncs a database against @changecast/testing's server served through msw's service worker. */
async function syncThroughMockServiceWorker(name: string) {
  const url = `${location.origin}/mock-sync`
  const server = createSyncServer({ failureRate: 0.3, retryAfter: 0 })
  const worker = setupWorker(...syncHandlers(server, url))
  await worker.start({ quiet: true, onUnhandledRequest: 'bypass' })
  const db = new Dexie(name)
  db.version(1).stores({ items: 'id' })
  const feed = changecast(db, { sync: httpSync({ url, pull: 'poll', interval: 50, backoff: { base: 10, cap: 50 } }) })
  const remote: unknown[] = []
  feed.on({ table: 'items', source: 'remote' }, (event) => remote.push(event.key))
  await db.open()
  try {
    await db.table('items').bulkPut([
      { id: 1, v: 1 },
      { id: 2, v: 2 },
    ])
    await db.table('items').update(1, { v: 10 })
    while (feed.sync!.status.outbox > 0 || server.batches.length < 2) await feed.sync!.flush().catch(() => undefined)
    server.edit([{ type: 'create', table: 'items', key: 3, value: { id: 3, v: 3 } }])
    while (remote.length === 0) await feed.sync!.flush().catch(() => undefined)
    return {
      batches: server.batches.map((batch) => batch.changes.length),
      serverRows: server.rows('items').map((row) => row.value),
      local: await db.table('items').toArray(),
      remote,
    }
  } finally {
    worker.stop()
    feed.close()
    db.close()
    await Dexie.delete(name)
  }
}

/**
 * Opens (or reopens) database `name` syncing with the server at `url` (a real one), writes
 * `local` rows at once (they wait in the outbox while the first snapshot loads), and
 * flushes: resolves when the snapshot, the push and the pull after it are done, with how
 * long that took, what the status showed on the way, and what the database holds.
 */
async function firstSync({
  url,
  name,
  local,
  localFrom,
}: {
  url: string
  name: string
  local: number
  localFrom: number
}) {
  const db = new Dexie(name)
  db.version(1).stores({ rows: 'id' })
  const feed = changecast(db, { sync: httpSync({ url, pull: 'poll', interval: 600_000 }) })
  const resyncs: string[] = []
  feed.onResync((info) => resyncs.push(info.reason))
  const progress: Array<{ loaded?: number; total?: number }> = []
  feed.sync!.subscribe(() => {
    const { phase, loaded, total } = feed.sync!.status
    if (phase === 'bootstrap' && progress.at(-1)?.loaded !== loaded) progress.push({ loaded, total })
  })
  let removed = 0
  let events = 0
  feed.on('rows', (event) => {
    events++
    if (event.type === 'delete' && event.removed) removed++
  })
  await db.open()
  const started = performance.now()
  try {
    if (local > 0) {
      await db
        .table('rows')
        .bulkPut(
          Array.from({ length: local }, (_, i) => ({ id: localFrom + i, project: 'local', title: `local ${i}` })),
        )
    }
    await feed.sync!.flush()
    const ms = Math.round(performance.now() - started)
    return {
      ms,
      count: await db.table('rows').count(),
      progress,
      resyncs,
      events,
      removed,
      status: { ...feed.sync!.status },
      sample: await db.table('rows').get(localFrom),
    }
  } finally {
    feed.close()
    db.close()
  }
}

const harness = {
  syncThroughMockServiceWorker,
  lifecycle,
  merging,
  firstSync,
  async open(name: string) {
    context = await openContext(name)
    return context.origin
  },
  write: (count: number, seed: number) => context!.write(count, seed),
  seen: () => context!.seen,
  async logRows(name: string) {
    const db = new Dexie(name)
    await db.open()
    // Rows after key 0, the changelog's identity row.
    const rows = (await db.table('_changecast_log').where(':id').above(0).toArray()) as Array<{
      rev: number
      tx: string
      changes: unknown[]
    }>
    db.close()
    return rows.map((row) => ({ rev: row.rev, tx: row.tx, events: row.changes.length }))
  },
  worker: {
    async open(name: string) {
      worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' })
      worker.onmessage = (event: MessageEvent<{ id: number; result?: unknown; error?: string }>) => {
        const call = waiting.get(event.data.id)
        waiting.delete(event.data.id)
        if (event.data.error) call?.reject(new Error(event.data.error))
        else call?.resolve(event.data.result)
      }
      return callWorker('open', name)
    },
    write: (count: number, seed: number) => callWorker('write', count, seed),
    seen: () => callWorker('seen'),
  },
}

declare global {
  interface Window {
    harness: typeof harness
  }
}
window.harness = harness
document.body.dataset.ready = 'true'
