// The convergence and scopes scenarios of docs/protocol.md in the simulated world: each
// seed plans its steps (writes in several tabs, another user's edits, offline spells,
// reloads and leader hand-overs, restarts, compaction, scope changes, an epoch change),
// then runs them against the in-memory server with all its faults, under simulated time;
// then faults stop and the properties are checked exactly. One seed (and, after a
// shrink, one list of kept steps) replays exactly: same trace, same hash.
import { writeFileSync } from 'node:fs'
import Dexie, { add, remove } from 'dexie'
import { expect } from 'vitest'
import { changecast } from '@changecast/core'
import { httpSync, readEvents, stream, userSwitching, setAsideActions } from '@changecast/core/sync'
import { createSyncServer, type SyncServer } from '@changecast/testing'
import type { PushReply, PushRequest, WireChange } from '@changecast/core/protocol'
import { LOG_TABLE, type LogRow } from '../../src/log/changelog.js'
import { SYNC_TABLE } from '../../src/sync/store.js'
import { FAULTS, FORBIDDEN, QUIET, history, write } from '../convergence.js'
import {
  PROJECTS,
  SCOPE_FAULTS,
  USERS,
  openTaskTab,
  scopeOfTask,
  watchReplies,
  type Task,
  type TaskTab,
} from '../scopes.js'
import { seeded, type Client, type SyncDb, type Todo } from '../sync-helpers.js'
import { Network } from './network.js'
import { Stuck, World } from './world.js'

export type ScenarioName = 'convergence' | 'scopes' | 'merge'

/** What one run did, and whether every property held. */
export interface Outcome {
  scenario: ScenarioName
  seed: number
  /** The plan's steps that ran (all of them, unless shrunk). */
  kept: number[]
  planned: number
  /** The trace's hash: the same for the same seed and steps, every time. */
  hash: string
  /** Simulated milliseconds the run took, and the tasks the world ran. */
  ms: number
  tasks: number
  /** The first property that failed, with its story; undefined when all held. */
  failure?: string
  /** The plan's steps that ran, readable. */
  steps: string[]
  /** The trace's last lines. */
  tail: string[]
}

/** Simulated time every client gets to catch up once faults stop (the liveness bound). */
export const CATCH_UP_MS = 30_000
const BASE = 'https://sim.test/api'

/** A step of a plan, drawn from the seed before the run (so that steps can be removed). */
type Step = { what: string; wait: number; r: number[] }

function plan(seed: number, count: number, kinds: ReadonlyArray<[string, number]>): Step[] {
  const random = seeded(seed)
  return Array.from({ length: count }, () => {
    let roll = random()
    let what = kinds.at(-1)![0]
    for (const [kind, share] of kinds) {
      if (roll < share) {
        what = kind
        break
      }
      roll -= share
    }
    return { what, wait: Math.floor(random() * 12), r: Array.from({ length: 8 }, () => random()) }
  })
}

/** Runs one seed of a scenario (only the `keep` steps of its plan, when given). */
export async function simulate(scenario: ScenarioName, seed: number, keep?: number[]): Promise<Outcome> {
  const world = new World({ seed })
  const run = scenario === 'scopes' ? scopes : scenario === 'merge' ? merge : convergence
  const outcome: Outcome = { scenario, seed, kept: [], planned: 0, hash: '', ms: 0, tasks: 0, steps: [], tail: [] }
  world.install()
  let failure: unknown
  const cleanups: Array<() => Promise<void>> = []
  try {
    await world.run(
      run(world, seed, keep, outcome, (cleanup) => cleanups.push(cleanup)),
      10 * 60_000,
      `${scenario} seed ${seed}`,
    )
  } catch (error) {
    failure = error
  }
  try {
    await world.run(Promise.all(cleanups.map((cleanup) => cleanup().catch(() => undefined))), 60_000, 'clean-up')
  } catch {
    // A run that failed may leave work that never ends; its databases have unique names.
  }
  world.uninstall()
  if (!failure && world.uncaught.length > 0)
    failure = new Error(`an uncaught error or unhandled rejection: ${describe(world.uncaught[0])}`)
  outcome.hash = world.digest()
  outcome.ms = world.now
  outcome.tasks = world.tasks
  outcome.tail = world.tail.slice(-60)
  if (world.full) writeFileSync(process.env.SIM_TRACE!, world.full.join('\n'))
  if (failure) outcome.failure = failure instanceof Stuck ? `liveness: ${failure.message}` : describe(failure)
  return outcome
}

const describe = (error: unknown) =>
  error instanceof Error
    ? `${error.message}${error.stack ? `\n${error.stack.split('\n').slice(1, 6).join('\n')}` : ''}`
    : String(error)

/**
 * Shrinks a failing run: removes steps of its plan (halves, then quarters, … then single
 * steps) while the run still fails, and returns the smallest failing run found.
 */
export async function shrink(
  failing: Outcome,
  budget = 200,
  run: (keep: number[]) => Promise<Outcome> = (keep) => simulate(failing.scenario, failing.seed, keep),
): Promise<Outcome> {
  let best = failing
  let runs = 0

  for (let size = Math.ceil(best.kept.length / 2); size >= 1 && runs < budget; size = Math.floor(size / 2)) {
    for (let at = 0; at < best.kept.length && runs < budget;) {
      const keep = [...best.kept.slice(0, at), ...best.kept.slice(at + size)]
      runs++
      const attempt = await run(keep)
      if (attempt.failure) best = attempt
      else at += size
    }
    if (size === 1) break
  }
  return best
}

/** A failure as a reader needs it: how to replay it, the steps, the story, the trace's end. */
export function report(outcome: Outcome): string {
  const keep = outcome.kept.length < outcome.planned ? ` SIM_STEPS=${outcome.kept.join(',')}` : ''
  return [
    `${outcome.scenario} seed ${outcome.seed} failed (${outcome.kept.length} of ${outcome.planned} steps, trace ${outcome.hash})`,
    `replay: SIM_SCENARIO=${outcome.scenario} SIM_SEED=${outcome.seed}${keep} SIM_TRACE=trace.txt pnpm test:sim`,
    'steps:',
    ...outcome.steps.map((step) => `  ${step}`),
    'failure:',
    outcome.failure ?? '',
    'trace (last lines):',
    ...outcome.tail.map((line) => `  ${line}`),
  ].join('\n')
}

type Register = (cleanup: () => Promise<void>) => void

/** The protocol's convergence scenario (see ../convergence.ts), in the world. */
async function convergence(
  world: World,
  seed: number,
  keep: number[] | undefined,
  out: Outcome,
  onCleanup: Register,
  merging = false,
) {
  const random = world.random
  const steps = plan(
    seed,
    70,
    merging
      ? [
          ['write', 0.2],
          ['merge', 0.3],
          ['edit', 0.15],
          ['offline', 0.08],
          ['reload', 0.06],
          ['restart', 0.03],
          ['compact', 0.02],
          ['reset', 0.01],
          ['blip', 0.02],
          ['flush', 0.06],
          ['wait', 0.07],
        ]
      : [
          ['write', 0.4],
          ['edit', 0.18],
          ['offline', 0.08],
          ['reload', 0.06],
          ['restart', 0.03],
          ['compact', 0.02],
          ['reset', 0.01],
          ['blip', 0.02],
          ['flush', 0.08],
          ['wait', 0.12],
        ],
  )
  // merge: what each accepted batch was sent as, by server revision (of the last epoch).
  const accepted = new Map<number, { epoch: string; changes: WireChange[] }>()
  const setup = seeded(seed + 1_000_003)
  const clients = 2 + Math.floor(setup() * 2)
  const pulls = Array.from({ length: clients }, () => (setup() < 0.5 ? stream : ('poll' as const)))
  const server: SyncServer = createSyncServer({
    random,
    ...FAULTS,
    heartbeat: 50,
    reject: (change) => ((change.value as Todo | undefined)?.title === FORBIDDEN ? 'forbidden title' : undefined),
  })
  const network = new Network(world, {
    who: (url) => url.pathname.split('/').at(-2)!,
    handle: async (request) => {
      const sent = merging && new URL(request.url).pathname.endsWith('/push') ? request.clone().json() : undefined
      const response = await server.handle(request)
      if (sent && response.ok) recordAcks((await sent) as PushRequest, (await response.clone().json()) as PushReply)
      return response
    },
    slow: (route) => (route === 'push' ? Math.floor(random() * 15) : 0),
  })
  const recordAcks = (request: PushRequest, reply: PushReply) => {
    const batches = new Map(request.batches.map((batch) => [batch.rev, batch]))
    for (const { rev, serverRev } of reply.acked)
      accepted.set(serverRev, { epoch: reply.epoch, changes: batches.get(rev)!.changes })
  }
  network.install()
  onCleanup(() => {
    network.uninstall()
    server.close()
    return Promise.resolve()
  })
  interface Tab {
    client: number
    context: Client
    /** Remote batches this tab's subscribers received (since the snapshot after a reset). */
    received: string[]
    /** A reset happened, and this tab has not received the snapshot loaded after it. */
    unsure: boolean
  }
  const tabs: Tab[] = []
  const all: Tab[] = []
  const names = Array.from({ length: clients }, (_, i) => `sim-converge-${seed}-${i}-${runs++}`)
  onCleanup(async () => {
    for (const tab of tabs) tab.context.close()
    await Promise.all(names.map((name) => Dexie.delete(name)))
  })
  let opened = 0
  /** The server's log was lost once (a reset step ran). */
  let reset = false
  const openTab = async (client: number): Promise<Tab> => {
    const db = new Dexie(names[client]!) as SyncDb
    db.version(1).stores({ todos: 'id', events: 'when' })
    const feed = changecast(db, {
      sync: httpSync({
        url: `${BASE}/${client}`,
        pull: pulls[client],
        interval: 15,
        batchSize: 1 + Math.floor(setup() * 6),
        backoff: { base: 2, cap: 30 },
        users: userSwitching,
        setAside: setAsideActions,
      }),
    })
    const number = opened++
    const tab: Tab = {
      client,
      received: [],
      unsure: reset,
      context: {
        db,
        feed,
        sync: feed.sync!,
        events: [],
        errors: [],
        rejections: [],
        close() {
          feed.close()
          db.close()
        },
      },
    }
    feed.onBatch((batch) => {
      if (batch.source !== 'remote') return
      world.trace(`tab ${number} (client ${client}) applied ${batch.tx}`)
      if (batch.origin !== 'server') return void tab.received.push(batch.tx)
      // Property 4 is per log. After a reset the client loads a snapshot of the new log;
      // what subscribers heard before it (batches of the old log still on their way
      // included) is another story. (The reset's error travels on another channel than
      // the batches, so it does not mark the boundary.)
      if (reset && batch.tx.includes('.snapshot.')) {
        tab.received = []
        tab.unsure = false
      }
    })
    await db.open()
    tabs.push(tab)
    all.push(tab)
    return tab
  }
  for (let client = 0; client < clients; client++) {
    await openTab(client)
    await openTab(client)
  }

  const keys = [1, 2, 3, 4]
  const pick = <T>(list: readonly T[], r: number): T => list[Math.floor(r * list.length)]!
  const run = keep ?? steps.map((_, i) => i)
  out.kept = run
  out.planned = steps.length
  for (const index of run) {
    const { what, wait, r } = steps[index]!
    const tab = pick(tabs, r[0]!)
    const { db } = tab.context
    const key = pick(keys, r[1]!)
    out.steps.push(`${index}: ${what} (tab of client ${tab.client}, key ${key})`)
    world.trace(`step ${index} ${what}`)
    if (what === 'write') {
      // Its values are the plan's r[2…7], always the same ones (replays of found seeds hold).
      let next = 2
      await write(db, key, keys, () => r[next++]!)
    } else if (what === 'merge') {
      await mergeWrite(db, key, r)
    } else if (what === 'edit' && merging) {
      const changes: WireChange[] = [
        r[2]! < 0.2
          ? { type: 'delete', table: 'todos', key }
          : r[2]! < 0.45
            ? { type: 'update', table: 'todos', key, value: { id: key, title: `server ${index}` } }
            : r[2]! < 0.7
              ? { type: 'update', table: 'todos', key, value: { id: key, title: `server ${index}` }, patch: ['title'] }
              : { type: 'update', table: 'todos', key, value: { id: key }, patch: [], ops: { votes: { add: 10 } } },
      ]
      try {
        const batch = server.edit(changes)
        accepted.set(batch.rev, { epoch: server.epoch, changes })
      } catch {
        // A merged edit of a task the server does not have: refused, nothing stored.
        out.steps[out.steps.length - 1] += ' (refused: gone)'
      }
    } else if (what === 'edit') {
      server.edit(
        r[2]! < 0.25
          ? [{ type: 'delete', table: 'todos', key }]
          : [{ type: 'update', table: 'todos', key, value: { id: key, title: `server ${index}` } }],
      )
    } else if (what === 'offline') {
      const client = String(Math.floor(r[2]! * clients))
      network.setOffline(client, !network.isOffline(client))
    } else if (what === 'reload') {
      // A reload, or the leader tab closing.
      const leader = tabs.find((candidate) => candidate.context.sync.status.leader)
      const closing = r[2]! < 0.5 && leader ? leader : tab
      tabs.splice(tabs.indexOf(closing), 1)
      closing.context.close()
      await openTab(closing.client)
    } else if (what === 'restart') {
      server.restart()
    } else if (what === 'compact') {
      server.compact()
    } else if (what === 'reset') {
      // Data loss: a new log under a new epoch. Once per run: a server whose epoch changes
      // again within a minute is taken for a broken one (docs/protocol.md, "Epoch and resets").
      if (!reset) {
        reset = true
        server.reset()
        // A closed tab hears nothing more (of either log).
        for (const each of all) each.unsure = true
      } else out.steps[out.steps.length - 1] += ' (skipped: one reset per run)'
    } else if (what === 'blip') {
      world.setOnline(false)
      await world.sleep(Math.floor(r[2]! * 20))
      world.setOnline(true)
    } else if (what === 'flush') {
      void tab.context.sync.flush({ attempts: 1 }).catch(() => undefined)
    }
    await world.sleep(wait)
  }

  // Everything online and quiet; each client must catch up within CATCH_UP_MS.
  world.trace('quiet')
  network.allOnline()
  server.configure(QUIET)
  const leaderOf = (client: number) => tabs.find((tab) => tab.client === client)!
  await quiesce(
    world,
    async () => {
      for (let client = 0; client < clients; client++) await leaderOf(client).context.sync.flush({ attempts: 10 })
      return String(server.batches.length)
    },
    `${seed}`,
  )

  const batches = server.batches
  const byTx = new Map(batches.map((batch) => [batch.tx, batch.rev]))
  const serverTodos = server
    .rows('todos')
    .map((row) => row.value as Todo)
    .sort((a, b) => a.id - b.id)
  for (let client = 0; client < clients; client++) {
    const { db, sync } = leaderOf(client).context
    const label = `seed ${seed}, client ${client}`
    const state = (await db.table(SYNC_TABLE).get('state')) as { clientId: string }
    // 1. Every committed local transaction is on the server exactly once, or was rejected.
    const local = (await db.table<LogRow>(LOG_TABLE).toArray()).filter((row) => row.source === 'local')
    const receipts = await Promise.all(local.map((row) => sync.settled(row.rev)))
    local.forEach((row, i) => {
      const copies = batches.filter((batch) => batch.origin === state.clientId && batch.tx === row.tx).length
      expect(copies, `${label}, rev ${row.rev}`).toBe(receipts[i]!.status === 'acked' ? 1 : 0)
      expect(receipts[i]!.status, `${label}, rev ${row.rev}`).not.toBe('dropped')
    })
    // 2, 3. The client's table equals the server's state, exactly.
    const held = await db.todos.toArray()
    if (JSON.stringify(held) !== JSON.stringify(serverTodos))
      throw new Error(
        `${label}: differs from the server\n${await history(leaderOf(client).context, held, serverTodos, batches)}`,
      )
    // 5. Nothing was set aside, nothing is waiting.
    expect(await sync.setAside(), label).toEqual([])
    expect(sync.status, label).toMatchObject({ outbox: 0, setAside: 0 })
  }
  // 6. merge: no path edit is lost. Replaying what was sent, in server order, with per-path
  // last-writer-wins and Dexie's operations summed, gives the server's state exactly.
  if (merging) {
    const model = new Map<number, Record<string, unknown>>()
    for (const [, { changes }] of [...accepted]
      .filter(([, { epoch }]) => epoch === server.epoch)
      .sort(([a], [b]) => a - b))
      for (const change of changes) replay(model, change)
    const expected = [...model.entries()].sort(([a], [b]) => a - b).map(([, value]) => value)
    expect(serverTodos, `seed ${seed}: the server's state is not the sent edits merged per path`).toEqual(expected)
  }
  // 4. Each server batch reached each tab's subscribers at most once, in server order.
  // A tab that did not receive the snapshot after a reset (closed first, or opened after it)
  // cannot tell the logs apart: property 4 is checked on the others.
  for (const tab of all.filter(({ unsure }) => !unsure)) {
    const revs = tab.received.map((tx) => byTx.get(tx) ?? -1)
    expect(revs.includes(-1), `seed ${seed}: an unknown remote batch`).toBe(false)
    for (let i = 1; i < revs.length; i++)
      expect(revs[i]!, `seed ${seed}, tab of client ${tab.client}: ${revs.join(',')}`).toBeGreaterThan(revs[i - 1]!)
  }
}
let runs = 0

/** The merge scenario: the convergence scenario with field updates and Dexie's modifications. */
const merge: typeof convergence = (world, seed, keep, out, onCleanup) =>
  convergence(world, seed, keep, out, onCleanup, true)

/** A field update of one task, drawn from the plan's values: a title, done, an increment, a tag added or removed. */
function mergeWrite(db: SyncDb, key: number, r: number[]): Promise<unknown> {
  const tasks = db.todos as unknown as Dexie.Table<Record<string, unknown>, number>
  const tag = `g${Math.floor(r[3]! * 4)}`
  const roll = r[2]!
  if (roll < 0.15) return tasks.put({ id: key, title: `p${Math.floor(r[3]! * 1000)}`, votes: 0 })
  if (roll < 0.35) return tasks.update(key, { title: `m${Math.floor(r[3]! * 1000)}` })
  if (roll < 0.5) return tasks.update(key, { done: r[3]! < 0.5 })
  if (roll < 0.75) return tasks.update(key, { votes: add(1 + Math.floor(r[3]! * 3)) })
  if (roll < 0.88) return tasks.update(key, { tags: add([tag]) })
  return tasks.update(key, { tags: remove([tag]) })
}

/**
 * Applies one sent change to the model of the server's state — independently of the
 * servers' code: a whole value replaces, a delete deletes, a patch sets each of its paths to
 * the sent value's (unless an operation made it) and applies each operation (numbers summed,
 * lists appended or filtered, sorted).
 */
function replay(model: Map<number, Record<string, unknown>>, change: WireChange): void {
  const key = change.key as number
  if (change.type === 'delete') return void model.delete(key)
  if (!change.patch) return void model.set(key, structuredClone(change.value) as Record<string, unknown>)
  const value = model.get(key)
  if (!value) throw new Error(`an accepted patch of task ${key}, which the server did not have`)
  const sent = change.value as Record<string, unknown>
  for (const path of change.patch) {
    // A path an operation made is applied as the operation (below).
    if (change.ops && Object.hasOwn(change.ops, path)) continue
    if (path in sent) value[path] = structuredClone(sent[path])
    else delete value[path]
  }
  for (const [path, op] of Object.entries(change.ops ?? {})) {
    const now = value[path]
    if ('add' in op)
      value[path] = Array.isArray(op.add)
        ? [...((now as unknown[]) ?? []), ...op.add].sort()
        : ((now as number) ?? 0) + op.add
    else if ('remove' in op)
      value[path] = Array.isArray(op.remove)
        ? ((now as unknown[]) ?? []).filter((item) => !(op.remove as unknown[]).includes(item)).sort()
        : ((now as number) ?? 0) - op.remove
  }
}

/**
 * Waits, in simulated time, until `round` (which flushes every client and returns what
 * the server holds) returns the same twice in a row; fails when that takes longer than
 * {@link CATCH_UP_MS}.
 */
async function quiesce(world: World, round: () => Promise<string>, seed: string): Promise<void> {
  const end = world.now + CATCH_UP_MS
  let last: string | undefined
  let stable = 0
  let error: unknown
  while (stable < 2) {
    if (world.now > end)
      throw new Stuck(
        `seed ${seed}: the clients did not catch up within ${CATCH_UP_MS} ms after the faults stopped${error ? ` (last error: ${describe(error)})` : ''}`,
      )
    try {
      const now = await round()
      stable = now === last ? stable + 1 : 0
      last = now
    } catch (failure) {
      error = failure
      stable = 0
    }
    await world.sleep(10)
  }
}

const INBOX = 'project:3'

/** The protocol's scopes scenario (see ../scopes.ts), in the world. */
async function scopes(world: World, seed: number, keep: number[] | undefined, out: Outcome, onCleanup: Register) {
  const random = world.random
  const steps = plan(seed, 60, [
    ['write', 0.4],
    ['edit', 0.15],
    ['membership', 0.1],
    ['compact', 0.05],
    ['offline', 0.06],
    ['reload', 0.04],
    ['flush', 0.08],
    ['wait', 0.12],
  ])
  const setup = seeded(seed + 1_000_003)
  const membership = new Map<string, Set<string>>([
    ['u1', new Set(['project:1', 'project:2'])],
    ['u2', new Set(['project:2', 'project:3'])],
  ])
  // Every membership a user had, with when it ended: a reply may carry what was readable while it was made.
  const memberships = USERS.map((user) => ({ user, scopes: new Set(membership.get(user)), from: 0, to: Infinity }))
  const readableBetween = (user: string, from: number, to: number) =>
    new Set(memberships.filter((h) => h.user === user && h.from <= to && h.to >= from).flatMap((h) => [...h.scopes]))
  const server = createSyncServer({
    random,
    ...SCOPE_FAULTS,
    heartbeat: 50,
    scopeOf: scopeOfTask,
    // Every user may also write into project:3, read or not (an inbox): a write there the
    // user cannot read leaves its client when the ack says so.
    scopes: (request) => {
      const read = [...(membership.get(request.headers.get('x-user') ?? '') ?? [])]
      return { read, write: [...read, INBOX] }
    },
  })
  const { seen, inspect } = watchReplies(readableBetween, () => world.now)
  const network = new Network(world, {
    who: (url) => url.pathname.split('/').at(-2)!,
    handle: async (request, user) => {
      const from = world.now
      const route = new URL(request.url).pathname.split('/').pop()!
      const response = await server.handle(request)
      if (response.type === 'error' || !response.body) return response
      if (route !== 'stream') {
        if (response.ok) inspect(user, route, await response.clone().json(), from)
        return response
      }
      const [mine, theirs] = response.body.tee()
      void (async () => {
        // A stream event may carry what the user could read just before it was sent.
        for await (const event of readEvents(mine))
          if (event.event === 'batch') inspect(user, 'stream', { batches: [JSON.parse(event.data)] }, world.now - 250)
      })().catch(() => undefined)
      return new Response(theirs, { status: response.status, headers: response.headers })
    },
  })
  network.install()
  onCleanup(() => {
    network.uninstall()
    server.close()
    return Promise.resolve()
  })

  const names = new Map<string, string>(USERS.map((user) => [user, `sim-scoped-${seed}-${user}-${runs++}`]))
  const tabs = new Map<string, TaskTab>()
  onCleanup(async () => {
    for (const tab of tabs.values()) tab.close()
    await Promise.all([...names.values()].map((name) => Dexie.delete(name)))
  })
  const openTab = async (user: string) => {
    const tab = await openTaskTab(names.get(user)!, `${BASE}/${user}`, user, setup)
    tab.feed.onBatch((batch) => {
      if (batch.source === 'remote') world.trace(`${user} applied ${batch.tx}`)
    })
    return tab
  }
  for (const user of USERS) tabs.set(user, await openTab(user))

  const pick = <T>(list: readonly T[], r: number): T => list[Math.floor(r * list.length)]!
  const run = keep ?? steps.map((_, i) => i)
  out.kept = run
  out.planned = steps.length
  for (const index of run) {
    const { what, wait, r } = steps[index]!
    const user = pick(USERS, r[0]!)
    const tab = tabs.get(user)!
    const id = 1 + Math.floor(r[1]! * 6)
    // Mostly projects the user is in; sometimes another one (refused).
    const own = [...membership.get(user)!]
    const project = own.length > 0 && r[2]! < 0.85 ? pick(own, r[3]!) : pick(PROJECTS, r[3]!)
    out.steps.push(`${index}: ${what} (${user}, task ${id}, ${project})`)
    world.trace(`step ${index} ${what}`)
    if (what === 'write') {
      if (r[4]! < 0.5) await tab.db.tasks.put({ id, project, title: `t${index}` })
      else if (r[4]! < 0.8) await tab.db.tasks.update(id, { project })
      else await tab.db.tasks.delete(id)
    } else if (what === 'edit') {
      server.edit(
        r[4]! < 0.2
          ? [{ type: 'delete', table: 'tasks', key: id }]
          : [
              {
                type: 'update',
                table: 'tasks',
                key: id,
                value: { id, project: pick(PROJECTS, r[5]!), title: `backend ${index}` },
              },
            ],
        'backend',
      )
    } else if (what === 'membership') {
      const scopes = new Set(membership.get(user))
      const which = pick(PROJECTS, r[5]!)
      if (scopes.has(which)) scopes.delete(which)
      else scopes.add(which)
      memberships.find((h) => h.user === user && h.to === Infinity)!.to = world.now
      memberships.push({ user, scopes: new Set(scopes), from: world.now, to: Infinity })
      membership.set(user, scopes)
      out.steps[out.steps.length - 1] += ` → ${[...scopes].join(', ')}`
    } else if (what === 'compact') {
      server.compact()
    } else if (what === 'offline') {
      network.setOffline(user, !network.isOffline(user))
    } else if (what === 'reload') {
      tab.close()
      tabs.set(user, await openTab(user))
    } else if (what === 'flush') {
      void tab.feed.sync!.flush({ attempts: 1 }).catch(() => undefined)
    }
    await world.sleep(wait)
  }

  world.trace('quiet')
  network.allOnline()
  server.configure(QUIET)
  await quiesce(
    world,
    async () => {
      for (const tab of tabs.values()) await tab.feed.sync!.flush({ attempts: 10 })
      return JSON.stringify(server.rows('tasks'))
    },
    `${seed}`,
  )

  const rows = server
    .rows('tasks')
    .map((row) => row.value as Task)
    .sort((a, b) => a.id - b.id)
  for (const [user, tab] of tabs) {
    const label = `seed ${seed}, ${user} in ${[...membership.get(user)!].join(', ')}`
    const mine = rows.filter((task) => membership.get(user)!.has(task.project))
    const held = (await tab.db.tasks.toArray()).sort((a, b) => a.id - b.id)
    if (JSON.stringify(held) !== JSON.stringify(mine)) {
      const state = JSON.stringify(await tab.db.table(SYNC_TABLE).get('state'))
      throw new Error(
        `${label}: holds ${JSON.stringify(held)}\nexpected ${JSON.stringify(mine)}\nstate ${state}\nstatus ${JSON.stringify(tab.feed.sync!.status)}`,
      )
    }
    expect(tab.feed.sync!.status, label).toMatchObject({ outbox: 0, setAside: 0 })
  }
  // Nothing of a project its user could not read ever reached a client.
  for (const { user, where, task, allowed } of seen)
    expect(
      allowed.has(task.project),
      `seed ${seed}: ${user} received task ${task.id} of ${task.project} in a ${where}`,
    ).toBe(true)
}
