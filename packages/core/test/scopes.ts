// The scopes scenario of docs/protocol.md ("Scopes"): two users, three projects,
// overlapping and changing membership, tasks created, moved between projects and deleted
// by the users and by the backend, compaction, reloads and offline spells, behind faults;
// then each client must hold exactly the server's tasks of the projects its user may read,
// and no reply or stream event may ever have carried a task of a project its user could
// not read. Run against the in-memory server here and against @changecast/server (PGlite,
// PostgreSQL) in its tests.
import Dexie, { type Table } from 'dexie'
import { http, HttpResponse } from 'msw'
import type { setupServer } from 'msw/node'
import { expect } from 'vitest'
import { changecast, type Feed, type TableMap } from '@changecast/core'
import { httpSync, readEvents, stream } from '@changecast/core/sync'
import type { FaultOptions } from '@changecast/testing'
import type { WireChange } from '@changecast/core/protocol'
import { QUIET } from './convergence.js'
import { BASE, installBrowserGlobals, seeded, until } from './sync-helpers.js'

export interface Task {
  id: number
  project: string
  title: string
}

export const USERS = ['u1', 'u2'] as const
export const PROJECTS = ['project:1', 'project:2', 'project:3'] as const
/** The scope of a task: its project. */
export const scopeOfTask = ({ value }: { value: unknown }): string => (value as Task).project

/** A server under test. Requests name their user in the `x-user` header. */
export interface ScopedTarget {
  handle(request: Request): Promise<Response>
  configure(faults: FaultOptions): void
  /** The backend writes (any project). */
  edit(changes: Array<Omit<WireChange, 'key'> & { key: unknown }>): Promise<void>
  /** Compacts the log up to its newest revision. */
  compact(): Promise<void>
  /** Every task on the server. */
  rows(): Promise<Task[]>
  close(): Promise<void>
}

/**
 * Starts a server whose user is the request's `x-user` header and whose grants are
 * `members(user)` (read and write), asked on every request; tasks are scoped by project.
 */
export type OpenScopedTarget = (random: () => number, members: (user: string) => string[]) => Promise<ScopedTarget>

/** The faults every run has until it goes quiet. */
export const SCOPE_FAULTS: FaultOptions = {
  latency: [0, 4],
  failureRate: 0.05,
  retryAfter: 0,
  dropRate: 0.03,
  lostReplyRate: 0.05,
  duplicateRate: 0.1,
  lateRate: 0.05,
}
type TaskDb = Dexie & { tasks: Table<Task, number> }

/** A task value seen in a reply: who received it, and the projects they could read around then. */
export interface Seen {
  user: string
  where: string
  task: Task
  allowed: Set<string>
}

/** A tab of a user's client: Dexie with the tasks table, syncing to `url` as `user`. */
export interface TaskTab {
  db: TaskDb
  feed: Feed<TableMap<TaskDb>>
  close(): void
}

/** Opens a tab of `user`'s client (database `name`); `random` picks streaming or polling and the batch size. */
export async function openTaskTab(name: string, url: string, user: string, random: () => number): Promise<TaskTab> {
  const db = new Dexie(name) as TaskDb
  db.version(1).stores({ tasks: 'id' })
  const feed = changecast(db, {
    sync: httpSync({
      url,
      headers: { 'x-user': user },
      pull: random() < 0.5 ? stream : 'poll',
      interval: 15,
      batchSize: 1 + Math.floor(random() * 5),
      backoff: { base: 2, cap: 30 },
    }),
  })
  await db.open()
  return {
    db,
    feed,
    close() {
      feed.close()
      db.close()
    },
  }
}

/**
 * Records every task value a user receives (a pull, a snapshot, a stream event, a
 * rejection's current) with the projects the user could read while the reply was made
 * (`from` until now), to check afterwards that none was of another project.
 */
export function watchReplies(
  readableBetween: (user: string, from: number, to: number) => Set<string>,
  now: () => number,
): { seen: Seen[]; inspect(user: string, route: string, body: unknown, from: number): void } {
  const seen: Seen[] = []
  const note = (user: string, where: string, value: unknown, from: number) => {
    const task = value as Task
    if (task && typeof task === 'object') seen.push({ user, where, task, allowed: readableBetween(user, from, now()) })
  }
  const inspect = (user: string, route: string, body: unknown, from: number) => {
    const reply = body as {
      batches?: Array<{ changes: WireChange[] }>
      rows?: WireChange[]
      rejected?: Array<{ current: Array<{ value?: unknown }> }>
    }
    for (const batch of reply.batches ?? []) for (const change of batch.changes) note(user, route, change.value, from)
    for (const row of reply.rows ?? []) note(user, route, row.value, from)
    for (const rejection of reply.rejected ?? [])
      for (const current of rejection.current) note(user, route, current.value, from)
  }
  return { seen, inspect }
}

/**
 * One seeded run. `mock` routes the clients' requests (`{BASE}/scoped/{user}/…`) to the
 * target; every pull, snapshot, push reply and stream event is read raw.
 */
export async function scopesScenario(
  seed: number,
  open: OpenScopedTarget,
  mock: ReturnType<typeof setupServer>,
): Promise<void> {
  const random = seeded(seed)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
  const browser = installBrowserGlobals()
  const membership = new Map<string, Set<string>>([
    ['u1', new Set(['project:1', 'project:2'])],
    ['u2', new Set(['project:2', 'project:3'])],
  ])
  // Every membership a user had, with when it ended: a reply may carry what was readable while it was made.
  const history: Array<{ user: string; scopes: Set<string>; from: number; to: number }> = USERS.map((user) => ({
    user,
    scopes: new Set(membership.get(user)),
    from: 0,
    to: Infinity,
  }))
  const readableBetween = (user: string, from: number, to: number) =>
    new Set(history.filter((h) => h.user === user && h.from <= to && h.to >= from).flatMap((h) => [...h.scopes]))
  const setMembership = (user: string, scopes: Set<string>) => {
    const now = performance.now()
    history.find((h) => h.user === user && h.to === Infinity)!.to = now
    history.push({ user, scopes: new Set(scopes), from: now, to: Infinity })
    membership.set(user, scopes)
  }
  const server = await open(random, (user) => [...(membership.get(user) ?? [])])
  const offline = new Set<string>()
  const streams = new Map<string, Set<AbortController>>()

  const { seen, inspect } = watchReplies(readableBetween, () => performance.now())

  mock.use(
    http.all(`${BASE}/scoped/:user/:route`, async ({ request, params }) => {
      const user = String(params.user)
      const route = String(params.route)
      if (offline.has(user)) return HttpResponse.error()
      const from = performance.now()
      const response = await server.handle(request)
      if (response.type === 'error') return HttpResponse.error()
      if (route !== 'stream' || !response.body) {
        if (response.ok) inspect(user, route, await response.clone().json(), from)
        return response
      }
      const cut = new AbortController()
      streams.set(user, (streams.get(user) ?? new Set()).add(cut))
      const [mine, theirs] = response.body.tee()
      void (async () => {
        for await (const event of readEvents(mine)) {
          // A stream event may carry what the user could read just before it was sent.
          if (event.event === 'batch')
            inspect(user, 'stream', { batches: [JSON.parse(event.data)] }, performance.now() - 250)
        }
      })().catch(() => undefined)
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>()
      void theirs.pipeTo(writable, { signal: cut.signal }).catch(() => undefined)
      return new Response(readable, { headers: response.headers })
    }),
  )

  const names = new Map<string, string>(USERS.map((user) => [user, `scoped-${seed}-${user}-${Date.now()}`]))
  const openTab = (user: string) => openTaskTab(names.get(user)!, `${BASE}/scoped/${user}`, user, random)
  const tabs = new Map<string, TaskTab>()
  for (const user of USERS) tabs.set(user, await openTab(user))

  try {
    for (let step = 0; step < 60; step++) {
      const user = pick(USERS)
      const tab = tabs.get(user)!
      const roll = random()
      const id = 1 + Math.floor(random() * 6)
      // Mostly projects the user is in; sometimes another one (refused).
      const own = [...membership.get(user)!]
      const project = own.length > 0 && random() < 0.85 ? pick(own) : pick(PROJECTS)
      if (roll < 0.4) {
        const write = random()
        if (write < 0.5) await tab.db.tasks.put({ id, project, title: `t${step}` })
        else if (write < 0.8) await tab.db.tasks.update(id, { project })
        else await tab.db.tasks.delete(id)
      } else if (roll < 0.55) {
        await server.edit(
          random() < 0.2
            ? [{ type: 'delete', table: 'tasks', key: id }]
            : [
                {
                  type: 'update',
                  table: 'tasks',
                  key: id,
                  value: { id, project: pick(PROJECTS), title: `backend ${step}` },
                },
              ],
        )
      } else if (roll < 0.65) {
        // A membership change: a project joined or left.
        const scopes = new Set(membership.get(user))
        const which = pick(PROJECTS)
        if (scopes.has(which)) scopes.delete(which)
        else scopes.add(which)
        setMembership(user, scopes)
      } else if (roll < 0.7) {
        await server.compact()
      } else if (roll < 0.76) {
        if (offline.has(user)) offline.delete(user)
        else {
          offline.add(user)
          for (const cut of streams.get(user) ?? []) cut.abort()
        }
      } else if (roll < 0.8) {
        tab.close()
        tabs.set(user, await openTab(user))
      } else if (roll < 0.88) {
        void tab.feed.sync!.flush({ attempts: 1 }).catch(() => undefined)
      }
      await new Promise((resolve) => setTimeout(resolve, random() * 12))
    }

    offline.clear()
    server.configure(QUIET)
    let stable = 0
    let last = ''
    await until(
      async () => {
        for (const tab of tabs.values()) await tab.feed.sync!.flush({ attempts: 10 })
        const now = JSON.stringify(await server.rows())
        stable = now === last ? stable + 1 : 0
        last = now
        return stable >= 2
      },
      { timeout: 30_000, what: `seed ${seed} to quiesce` },
    )

    const rows = (await server.rows()).sort((a, b) => a.id - b.id)
    for (const [user, tab] of tabs) {
      const label = `seed ${seed}, ${user} in ${[...membership.get(user)!].join(', ')}`
      const mine = rows.filter((task) => membership.get(user)!.has(task.project))
      console.log(
        user,
        JSON.stringify(await tab.db.table('_changecast_sync').get('state')),
        JSON.stringify(tab.feed.sync!.status),
        JSON.stringify(await tab.db.tasks.toArray()),
        JSON.stringify(rows),
      )
      expect(
        (await tab.db.tasks.toArray()).sort((a, b) => a.id - b.id),
        label,
      ).toEqual(mine)
      expect(tab.feed.sync!.status, label).toMatchObject({ outbox: 0, setAside: 0 })
    }
    // Nothing of a project its user could not read ever reached a client.
    for (const { user, where, task, allowed } of seen) {
      expect(
        allowed.has(task.project),
        `seed ${seed}: ${user} received task ${task.id} of ${task.project} in a ${where}`,
      ).toBe(true)
    }
  } finally {
    for (const tab of tabs.values()) tab.close()
    await Promise.all([...names.values()].map((name) => Dexie.delete(name)))
    browser.uninstall()
    await server.close()
  }
}
