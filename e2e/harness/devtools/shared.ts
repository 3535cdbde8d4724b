// A small app for the devtools specs: one database, a feed, and `window.app` to write with.
import Dexie, { type Table } from 'dexie'
import { changecast } from '@changecast/core'
import { mountDevtools, type DevtoolsHandle, type DevtoolsOptions } from '@changecast/devtools'

export type Note = { id: number; text: string }
export const db = new Dexie('devtools-e2e') as Dexie & { notes: Table<Note, number> }
db.version(1).stores({ notes: 'id' })
export const feed = changecast(db)
/** The app opens its database at start, as apps do: from then on it hears the other tabs. */
export const opened = db.open()

declare global {
  interface Window {
    app: {
      put(id: number, text: string): Promise<unknown>
      remove(id: number): Promise<unknown>
      mount(options?: DevtoolsOptions): DevtoolsHandle
      listeners(): number
    }
  }
}
window.app = {
  put: (id, text) => db.notes.put({ id, text }),
  remove: (id) => db.notes.delete(id),
  mount: (options) => mountDevtools(feed, options),
  listeners: () => feed.listenerCount,
}
