// A dedicated worker with its own Changecast feed, writing to the board on a timer.
// Its commits reach every tab through the same channel and changelog as a tab's.
import { changecast } from '@changecast/core'
import { createDb, randomTitle, type Status } from './db'

const db = createDb()
const feed = changecast(db)
const statuses: Status[] = ['todo', 'doing', 'done']

async function tick() {
  const ids = await db.tasks.toCollection().primaryKeys()
  if (ids.length > 0 && Math.random() < 0.7) {
    const id = ids[Math.floor(Math.random() * ids.length)]!
    await db.tasks.update(id, { status: statuses[Math.floor(Math.random() * 3)]!, updatedAt: Date.now() })
  } else {
    await db.tasks.add({ title: `${randomTitle()} (from the worker)`, status: 'todo', updatedAt: Date.now() })
  }
}

void db.open().then(() => {
  self.postMessage({ origin: feed.origin })
  setInterval(() => void tick(), 400)
})
