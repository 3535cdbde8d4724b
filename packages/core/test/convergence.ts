// The convergence scenario of docs/protocol.md: seeded, randomized clients and faults
// against any server speaking the protocol (the in-memory one here, @changecast/server's
// tests run it against PGlite and PostgreSQL), with the properties checked exactly.
import { http, HttpResponse } from 'msw'
import type { setupServer } from 'msw/node'
import { expect } from 'vitest'
import type { FaultOptions } from '@changecast/testing'
import type { WireChange } from '@changecast/core/protocol'
import { stream } from '@changecast/core/sync'
import { LOG_TABLE, type LogRow } from '../src/log/changelog.js'
import { KEYS_TABLE, SYNC_TABLE, keyId } from '../src/sync/store.js'
import {
  BASE,
  closeAll,
  installBrowserGlobals,
  openClient,
  seeded,
  until,
  type Client,
  type SyncDb,
  type Todo,
} from './sync-helpers.js'

/** The seeds to run: a fixed handful in CI; CONVERGENCE_SEEDS=200 (or a list: "3,17") runs more. */
export function seedsToRun(): number[] {
  const given = process.env.CONVERGENCE_SEEDS
  if (!given) return [1, 2, 3, 4, 5, 6]
  if (given.includes(',')) return given.split(',').map(Number)
  return Array.from({ length: Number(given) }, (_, i) => i + 1)
}

/** The faults every run has until it goes quiet. */
export const FAULTS: FaultOptions = {
  latency: [0, 4],
  failureRate: 0.08,
  retryAfter: 0,
  dropRate: 0.05,
  lostReplyRate: 0.1,
  duplicateRate: 0.15,
  lateRate: 0.1,
}
/** No faults. */
export const QUIET: FaultOptions = {
  failureRate: 0,
  dropRate: 0,
  lostReplyRate: 0,
  duplicateRate: 0,
  lateRate: 0,
  latency: 0,
}

/** The title every server in the scenario refuses (its rule: reject a batch with it). */
export const FORBIDDEN = 'forbidden'

/** A server under test, with the scenario's faults in front of it. */
export interface Target {
  /** Answers one protocol request (faults included). */
  handle(request: Request): Promise<Response>
  /** Changes the faults. */
  configure(faults: FaultOptions): void
  /** Another user writes (keys as the app uses them). */
  edit(changes: Array<Omit<WireChange, 'key'> & { key: unknown }>): Promise<void>
  /** A restart: open streams end, the log stays. */
  restart(): Promise<void>
  /** Every accepted batch, in server order. */
  batches(): Promise<ReadonlyArray<{ rev: number; tx: string; origin: string }>>
  /** The server's current values of a table. */
  rows(table: string): Promise<unknown[]>
  close(): Promise<void>
}

/** Starts a server for one run; `random` drives its faults (start them at {@link FAULTS}). */
export type OpenTarget = (random: () => number) => Promise<Target>

let mock: ReturnType<typeof setupServer>
/** The msw server the scenario routes requests through (call once per test file). */
export function useMock(server: ReturnType<typeof setupServer>): void {
  mock = server
}

interface Tab {
  client: number
  context: Client
  /** Transaction ids of the remote batches this tab's subscribers received, in order. */
  received: string[]
}

/**
 * One of the scenario's local writes to `key` in a tab: a put, an update, a delete, or a
 * transaction of two puts; `next` chooses which and fills in the values (a forbidden title
 * now and then).
 */
export function write(db: SyncDb, key: number, keys: readonly number[], next: () => number): Promise<unknown> {
  const title = () => {
    const [forbidden, n] = [next(), next()]
    return forbidden < 0.08 ? FORBIDDEN : `t${Math.floor(n * 1000)}`
  }
  const roll = next()
  if (roll < 0.5) return db.todos.put({ id: key, title: title() })
  if (roll < 0.7) return db.todos.update(key, { title: title(), done: next() < 0.5 })
  if (roll < 0.85) return db.todos.delete(key)
  return db.transaction('rw', db.todos, async () => {
    await db.todos.put({ id: key, title: title() })
    await db.todos.put({ id: keys[Math.floor(next() * keys.length)]!, title: title() })
  })
}

/**
 * One seeded run: 2–3 clients × 2 tabs write, go offline, reload, flush, while the server
 * restarts and another user edits, all behind faults; then everything goes quiet and the
 * properties of docs/protocol.md are checked exactly.
 */
export async function scenario(seed: number, open: OpenTarget): Promise<void> {
  const random = seeded(seed)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
  const browser = installBrowserGlobals()
  const server = await open(random)
  const offline = new Set<number>()
  const streams = new Map<number, Set<AbortController>>()
  mock.use(
    http.all(`${BASE}/:client/:route`, async ({ request, params }) => {
      const client = Number(params.client)
      if (offline.has(client)) return HttpResponse.error()
      const response = await server.handle(request)
      // A reply travels a while after the server committed: meanwhile other writes land and stream in.
      if (params.route === 'push') await new Promise((resolve) => setTimeout(resolve, random() * 15))
      if (params.route !== 'stream' || !response.body)
        return response.type === 'error' ? HttpResponse.error() : response
      // A client going offline cuts its open streams too.
      const cut = new AbortController()
      const set = streams.get(client) ?? new Set()
      streams.set(client, set.add(cut))
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>()
      void response.body.pipeTo(writable, { signal: cut.signal }).catch(() => undefined)
      return new Response(readable, { headers: response.headers })
    }),
  )
  const clients = 2 + Math.floor(random() * 2)
  const names = Array.from({ length: clients }, (_, i) => `converge-${seed}-${i}-${Date.now()}`)
  const pulls = names.map(() => pick([stream, 'poll'] as const))
  const tabs: Tab[] = []
  const all: Tab[] = []

  const openTab = async (client: number): Promise<Tab> => {
    const context = await openClient({
      name: names[client],
      url: `${BASE}/${client}`,
      pull: pulls[client],
      interval: 15,
      batchSize: 1 + Math.floor(random() * 6),
      backoff: { base: 2, cap: 30 },
    })
    const tab: Tab = { client, context, received: [] }
    context.feed.onBatch((batch) => {
      if (batch.source !== 'remote' || batch.origin === 'server') return
      tab.received.push(batch.tx)
    })
    tabs.push(tab)
    all.push(tab)
    return tab
  }
  for (let client = 0; client < clients; client++) {
    await openTab(client)
    await openTab(client)
  }

  const keys = [1, 2, 3, 4]
  try {
    for (let step = 0; step < 70; step++) {
      const tab = pick(tabs)
      const { db } = tab.context
      const roll = random()
      if (roll < 0.4) {
        await write(db, pick(keys), keys, random)
      } else if (roll < 0.6) {
        const key = pick(keys)
        await server.edit(
          random() < 0.25
            ? [{ type: 'delete', table: 'todos', key }]
            : [{ type: 'update', table: 'todos', key, value: { id: key, title: `server ${step}` } }],
        )
      } else if (roll < 0.68) {
        const client = Math.floor(random() * clients)
        if (offline.has(client)) offline.delete(client)
        else {
          offline.add(client)
          for (const cut of streams.get(client) ?? []) cut.abort()
        }
      } else if (roll < 0.74) {
        // A reload, or the leader tab closing.
        const leader = tabs.find((candidate) => candidate.context.sync.status.leader)
        const closing = random() < 0.5 && leader ? leader : tab
        tabs.splice(tabs.indexOf(closing), 1)
        closing.context.close()
        await openTab(closing.client)
      } else if (roll < 0.77) {
        await server.restart()
      } else if (roll < 0.8) {
        browser.setOnline(false)
        await new Promise((resolve) => setTimeout(resolve, random() * 20))
        browser.setOnline(true)
      } else if (roll < 0.88) {
        void tab.context.sync.flush({ attempts: 1 }).catch(() => undefined)
      }
      await new Promise((resolve) => setTimeout(resolve, random() * 12))
    }

    // Everything online and quiet.
    offline.clear()
    server.configure(QUIET)
    let stable = 0
    let seen = -1
    await until(
      async () => {
        for (let client = 0; client < clients; client++) {
          await tabs.find((tab) => tab.client === client)!.context.sync.flush({ attempts: 10 })
        }
        const count = (await server.batches()).length
        stable = count === seen ? stable + 1 : 0
        seen = count
        return stable >= 2
      },
      { timeout: 20_000, what: `seed ${seed} to quiesce` },
    )

    const batches = await server.batches()
    const byTx = new Map(batches.map((batch) => [batch.tx, batch.rev]))
    const serverTodos = ((await server.rows('todos')) as Todo[]).sort((a, b) => a.id - b.id)
    for (let client = 0; client < clients; client++) {
      const { db, sync } = tabs.find((tab) => tab.client === client)!.context
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
      expect(
        batches.filter((batch) => batch.origin === state.clientId),
        label,
      ).toHaveLength(receipts.filter((receipt) => receipt.status === 'acked').length)
      // 2, 3. The client's table equals the server's state, exactly.
      const held = await db.todos.toArray()
      const differ = JSON.stringify(held) !== JSON.stringify(serverTodos)
      // On a difference, the message tells the story of each entity that differs, so that one
      // failure (they are timing-dependent) is enough to find its cause.
      expect(
        held,
        differ
          ? `${label}\n${await history(tabs.find((tab) => tab.client === client)!.context, held, serverTodos, batches)}`
          : label,
      ).toEqual(serverTodos)
      // 5. Nothing was set aside, nothing is waiting.
      expect(await sync.setAside(), label).toEqual([])
      expect(sync.status, label).toMatchObject({ outbox: 0, setAside: 0 })
    }
    // 4. Each server batch reached each tab's subscribers at most once, in server order.
    for (const tab of all) {
      const revs = tab.received.map((tx) => byTx.get(tx) ?? -1)
      expect(revs.includes(-1), `seed ${seed}: an unknown remote batch`).toBe(false)
      for (let i = 1; i < revs.length; i++) {
        expect(revs[i]!, `seed ${seed}, tab of client ${tab.client}: ${revs.join(',')}`).toBeGreaterThan(revs[i - 1]!)
      }
    }
  } finally {
    await closeAll()
    browser.uninstall()
    await server.close()
  }
}

/**
 * What a client did about the entities where it and the server differ: its changelog rows
 * that touch them (local commits with their receipts, server batches with their server
 * revision), its records of the server's state, and where it stands.
 */
export async function history(
  { db, sync }: Client,
  held: Todo[],
  server: Todo[],
  batches: ReadonlyArray<{ rev: number; tx: string; origin: string }>,
): Promise<string> {
  const ids = new Set([...held, ...server].map((todo) => todo.id))
  const differing = [...ids].filter(
    (id) =>
      JSON.stringify(held.find((todo) => todo.id === id)) !== JSON.stringify(server.find((todo) => todo.id === id)),
  )
  const serverRev = new Map(batches.map((batch) => [batch.tx, batch.rev]))
  const log = await db.table<LogRow>(LOG_TABLE).toArray()
  const lines = [`state: ${JSON.stringify(await db.table(SYNC_TABLE).get('state'))}`]
  for (const id of differing) {
    lines.push(
      `todos ${id}: here ${JSON.stringify(held.find((todo) => todo.id === id))}, server ${JSON.stringify(server.find((todo) => todo.id === id))}`,
    )
    lines.push(`  record: ${JSON.stringify(await db.table(KEYS_TABLE).get(keyId('todos', id)))}`)
    for (const row of log) {
      if (!Array.isArray(row.changes)) continue
      const touching = row.changes.filter((change) => change.table === 'todos' && change.key === id)
      if (touching.length === 0) continue
      const receipt = row.source === 'local' ? (await sync.settled(row.rev)).status : ''
      lines.push(
        `  log ${row.rev} ${row.source} ${row.tx} server rev ${serverRev.get(row.tx) ?? '-'} ${receipt}: ${JSON.stringify(touching.map(({ type, value }) => ({ type, value })))}`,
      )
    }
  }
  return lines.join('\n')
}
