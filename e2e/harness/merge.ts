// Clients for the merge spec: each a database synced live with a real changecast-server,
// where the spec edits fields and presses "+1" (Dexie's `add(1)`).
import Dexie, { add } from 'dexie'
import { changecast, type Feed } from '@changecast/core'
import { httpSync, stream } from '@changecast/core/sync'

export type Card = { id: number; title: string; status: string; votes: number }

const clients = new Map<string, { db: Dexie; feed: Feed }>()
const client = (name: string) => {
  const found = clients.get(name)
  if (!found) throw new Error(`no merge client ${name}`)
  return found
}
const cards = (name: string) => client(name).db.table<Card, number>('cards')

export const merging = {
  /** Opens database `name`, synced live with the server at `url`. */
  async open({ url, name }: { url: string; name: string }) {
    const db = new Dexie(name)
    db.version(1).stores({ cards: 'id' })
    const feed = changecast(db, { sync: httpSync({ url, pull: stream, backoff: { base: 50, cap: 400 } }) })
    clients.set(name, { db, feed })
    await db.open()
  },
  put: (name: string, card: Card) => cards(name).put(card),
  /** Edits some fields of a card, as an app's form does (`update()`). */
  edit: (name: string, id: number, fields: Partial<Card>) => cards(name).update(id, fields),
  /** Presses "+1" `times` times, one transaction each. */
  async plusOne(name: string, id: number, times: number) {
    for (let i = 0; i < times; i++) await cards(name).update(id, { votes: add(1) })
  },
  card: (name: string, id: number) => cards(name).get(id),
  flush: (name: string) => client(name).feed.sync!.flush(),
  status: (name: string) => ({ ...client(name).feed.sync!.status }),
}
