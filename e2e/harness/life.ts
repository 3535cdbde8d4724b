// Clients for the lifecycle spec: each a database synced with a real changecast-server,
// with a bearer token the spec sets (expired, refreshed, another user's) and a record of
// every task its tables held.
import Dexie from 'dexie'
import { changecast, type Feed } from '@changecast/core'
import { httpSync, setAsideActions, stream, userSwitching } from '@changecast/core/sync'

export type Task = { id: number; owner: string; title: string }

interface Life {
  db: Dexie
  feed: Feed
  token: string
  /** Owners of every task value this client's events carried (what its user could see). */
  owners: Set<string>
}

const lives = new Map<string, Life>()
const life = (name: string): Life => {
  const found = lives.get(name)
  if (!found) throw new Error(`no lifecycle client ${name}`)
  return found
}

export const lifecycle = {
  /** Opens database `name` syncing (live, every part) with `url` as the holder of `token`. */
  async open({ url, name, token }: { url: string; name: string; token: string }) {
    const db = new Dexie(name)
    db.version(1).stores({ tasks: 'id' })
    const client = { db, token, owners: new Set<string>() } as Life
    client.feed = changecast(db, {
      sync: httpSync({
        url,
        headers: () => ({ authorization: `Bearer ${client.token}` }),
        pull: stream,
        users: userSwitching,
        setAside: setAsideActions,
        backoff: { base: 50, cap: 400 },
      }),
    })
    client.feed.on('tasks', (event) => {
      const owner = (event.value as Task | undefined)?.owner
      if (owner) client.owners.add(owner)
    })
    lives.set(name, client)
    await db.open()
  },
  /** What the app's `headers()` returns from now on. */
  setToken(name: string, token: string) {
    life(name).token = token
  },
  put: (name: string, task: Task) => life(name).db.table('tasks').put(task),
  tasks: async (name: string) => ((await life(name).db.table('tasks').toArray()) as Task[]).sort((a, b) => a.id - b.id),
  status: (name: string) => ({ ...life(name).feed.sync!.status }),
  flush: (name: string) => life(name).feed.sync!.flush(),
  settled: (name: string) => life(name).feed.sync!.settled(),
  signOut: (name: string) => life(name).feed.sync!.signOut(),
  rejections: (name: string) => life(name).feed.sync!.rejections(),
  /** Owners seen since the last call (and forgets them). */
  owners(name: string) {
    const seen = [...life(name).owners].sort()
    life(name).owners.clear()
    return seen
  },
}
