// The page side of the end-to-end harness: exposes `window.harness` to Playwright.
import Dexie from 'dexie'
import { openContext, type Context } from './context'

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

const harness = {
  async open(name: string) {
    context = await openContext(name)
    return context.origin
  },
  write: (count: number, seed: number) => context!.write(count, seed),
  seen: () => context!.seen,
  async logRows(name: string) {
    const db = new Dexie(name)
    await db.open()
    const rows = (await db.table('_changecast_log').toArray()) as Array<{ rev: number; tx: string; changes: unknown[] }>
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
