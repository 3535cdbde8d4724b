// One Changecast context (a page or a worker) for the end-to-end tests: a database with
// two tables, a feed that records every delivered batch, and a seeded random writer.
import Dexie, { type Table } from 'dexie'
import { changecast, type ChangeBatch, type Feed } from '@changecast/core'

export type Item = { id: number; v: number; marker?: string }
export type HarnessDb = Dexie & { a: Table<Item, number>; b: Table<Item, number> }

/** What a context recorded of one delivered batch. */
export interface Seen {
  rev: number | undefined
  tx: string
  origin: string
  source: string
  events: number
  aborted: boolean
}

export interface Context {
  origin: string
  seen: Seen[]
  write(count: number, seed: number): Promise<{ committed: number; aborted: number }>
  close(): void
}

/** A small seeded PRNG (mulberry32), so a failing run can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export async function openContext(name: string): Promise<Context> {
  const db = new Dexie(name) as HarnessDb
  db.version(1).stores({ a: 'id', b: 'id' })
  const feed: Feed = changecast(db) as unknown as Feed
  const seen: Seen[] = []
  feed.onBatch((batch: ChangeBatch) => {
    seen.push({
      rev: batch.rev,
      tx: batch.tx,
      origin: batch.origin,
      source: batch.source,
      events: batch.events.length,
      aborted: batch.events.some((event) => (event.value as Item | undefined)?.marker === 'aborted'),
    })
  })
  await db.open()

  async function write(count: number, seed: number) {
    const next = random(seed)
    const pick = <T>(items: T[]) => items[Math.floor(next() * items.length)]!
    const id = () => 1 + Math.floor(next() * 40)
    let committed = 0
    let aborted = 0
    for (let i = 0; i < count; i++) {
      const abort = next() < 0.15
      const tables = next() < 0.3 ? [db.a, db.b] : [pick([db.a, db.b])]
      const marker = abort ? 'aborted' : undefined
      const ops = 1 + Math.floor(next() * 3)
      try {
        await db.transaction('rw', tables, async () => {
          for (let op = 0; op < ops; op++) {
            const table = pick(tables)
            const kind = next()
            // Every committed transaction creates or changes at least one row, so each one is a batch.
            if (op === 0 || kind < 0.5) await table.put({ id: id(), v: Math.floor(next() * 1e9), marker })
            else if (kind < 0.75)
              await table.bulkPut([
                { id: id(), v: 1, marker },
                { id: id(), v: 2, marker },
              ])
            else await table.delete(id())
          }
          if (abort) throw new Error('rolled back on purpose')
        })
        committed++
      } catch {
        aborted++
      }
      if (next() < 0.5) await pause(Math.floor(next() * 3))
    }
    return { committed, aborted }
  }

  return { origin: feed.origin, seen, write, close: () => feed.close() }
}
