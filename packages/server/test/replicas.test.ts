// Read replicas: a real PostgreSQL primary and a streaming replica of it (pg_basebackup -R),
// started for this file. Pulls, snapshot pages and stream catch-ups read from the replica;
// a lagging replica never takes a client back nor past a batch (seeded, randomized, with
// replay paused and resumed on the replica itself); a replica past the lag bound, or down,
// is skipped.
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { PullReply } from '@changecast/core/protocol'
import { createSyncHandler, insecureNoAuth, openPostgres, type Database, type SyncHandler } from '@changecast/server'
import { startPostgres, startReplica } from '../../../scripts/postgres.mjs'
import { until } from '../../core/test/sync-helpers.js'

type Cluster = Awaited<ReturnType<typeof startPostgres>>
type Replica = Awaited<ReturnType<typeof startReplica>>

let primary: Cluster
let replica: Replica
let schemas = 0

beforeAll(async () => {
  primary = await startPostgres()
  replica = await startReplica(primary)
}, 120_000)
afterAll(() => {
  replica?.stop()
  primary?.stop()
})

/** A database whose statements are recorded (the real one underneath). */
function recorded(database: Database): Database & { reads: string[] } {
  const reads: string[] = []
  return Object.assign(Object.create(database) as Database, {
    reads,
    kind: database.kind,
    query: <R>(sql: string, params?: readonly unknown[]) => {
      reads.push(sql)
      return database.query<R>(sql, params)
    },
  })
}

/** Statements that read the log or the snapshot (not the meta row). */
const logReads = (reads: string[]) => reads.filter((sql) => /changecast_(changes|entities)/.test(sql)).length

async function sql(url: string, text: string): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<Record<string, unknown>>(text)).rows
  } finally {
    await client.end()
  }
}

/** The head the replica has replayed, in `schema` (-1 before the schema reached it). */
const replicaHead = async (schema: string) =>
  Number(
    (await sql(replica.url, `select head from "${schema}".changecast_meta where id = 1`).catch(() => []))[0]?.head ??
      -1,
  )

interface Setup {
  handler: SyncHandler
  primaryDb: Database & { reads: string[] }
  replicaDb: Database & { reads: string[] }
  schema: string
  close(): Promise<void>
}

async function setup(options: { maxReplicaLag?: number } = {}): Promise<Setup> {
  const schema = `replicas_${++schemas}`
  const primaryDb = recorded(await openPostgres(primary.url))
  const replicaDb = recorded(await openPostgres(replica.url))
  const handler = createSyncHandler({
    database: primaryDb,
    readDatabase: replicaDb,
    authenticate: insecureNoAuth,
    schema,
    // Only what the test does reads the log.
    pollInterval: 3_600_000,
    ...options,
  })
  await handler.ready
  return {
    handler,
    primaryDb,
    replicaDb,
    schema,
    async close() {
      await handler.close()
      await primaryDb.close()
    },
  }
}

const change = (key: string, n: number) => ({ type: 'update', table: 'todos', key, value: { id: key, n } })

async function push(handler: SyncHandler, clientId: string, rev: number, n = rev): Promise<number> {
  const response = await handler(
    new Request('http://sync.test/push', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        v: 2,
        clientId,
        batches: [{ rev, tx: `${clientId}.${rev}`, at: 1, changes: [change(`${clientId}${n % 5}`, n)] }],
      }),
    }),
  )
  expect(response.status).toBe(200)
  const reply = (await response.json()) as { acked: Array<{ serverRev: number }> }
  return reply.acked[0]!.serverRev
}

async function pull(handler: SyncHandler, clientId: string, since: number, limit = 50): Promise<PullReply> {
  const response = await handler(
    new Request(`http://sync.test/pull?v=2&since=${since}&limit=${limit}&clientId=${clientId}`),
  )
  expect(response.status).toBe(200)
  return (await response.json()) as PullReply
}

function replicaSeeds(): number[] {
  const given = process.env.REPLICA_SEEDS
  if (!given) return [1, 2, 3, 4, 5, 6, 7, 8]
  if (given.includes(',')) return given.split(',').map(Number)
  return Array.from({ length: Number(given) }, (_, i) => i + 1)
}

describe('read replicas (a real primary and streaming replica)', () => {
  it('pulls, snapshot pages and stream catch-ups read from the replica; pushes go to the primary', async () => {
    const { handler, primaryDb, replicaDb, schema, close } = await setup()
    try {
      for (let rev = 1; rev <= 30; rev++) await push(handler, 'a', rev)
      await until(async () => (await replicaHead(schema)) === 30)
      await until(() => handler.replicas[0]?.up === true && handler.replicas[0].head === 30)
      primaryDb.reads.length = replicaDb.reads.length = 0

      const reply = await pull(handler, 'b', 0, 100)
      expect(reply.batches.map((batch) => batch.rev)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1))
      expect(reply).toMatchObject({ upTo: 30, more: false })

      const snapshot = await handler(new Request('http://sync.test/snapshot?v=2&clientId=b&limit=2'))
      const first = (await snapshot.json()) as { rev: number; rows: unknown[]; next?: string; total: number }
      expect(first).toMatchObject({ rev: 30, total: 5 })
      const next = await handler(
        new Request(
          `http://sync.test/snapshot?v=2&clientId=b&limit=10&rev=30&after=${encodeURIComponent(first.next!)}`,
        ),
      )
      expect(((await next.json()) as { rows: unknown[] }).rows).toHaveLength(3)

      const stream = await handler(new Request('http://sync.test/stream?v=2&since=10&clientId=b'))
      const reader = stream.body!.getReader()
      let text = ''
      while (!text.includes('"rev":30,')) text += new TextDecoder().decode((await reader.read()).value)
      await reader.cancel()
      expect([...text.matchAll(/"rev":(\d+),/g)].map((match) => Number(match[1]))).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 11),
      )

      // The log and the snapshot came from the replica; the primary answered its head only.
      expect(logReads(replicaDb.reads)).toBeGreaterThanOrEqual(4)
      expect(logReads(primaryDb.reads)).toBe(0)
    } finally {
      await close()
    }
  }, 60_000)

  // Two clients push and pull at random while the replica's replay is paused and resumed at
  // random: every reply is checked against the primary's log, and, at the end, each client
  // has received every batch of the other exactly once, in order.
  // REPLICA_SEEDS=n runs seeds 1–n; REPLICA_SEEDS=a,b replays those.
  for (const seed of replicaSeeds()) {
    it(`a lagging replica never takes a client back nor past a batch (seed ${seed})`, async () => {
      const { handler, replicaDb, close } = await setup()
      let state = seed
      const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
      const clients = ['a', 'b'].map((id) => ({ id, rev: 0, position: 0, acked: 0, seen: [] as number[] }))
      const written = new Map<number, string>()
      let paused = false
      let fromReplica = 0
      const step = async (client: (typeof clients)[number]) => {
        const since = client.position
        const acked = client.acked
        const before = logReads(replicaDb.reads)
        const reply = await pull(handler, client.id, since, 1 + Math.floor(random() * 4))
        if (logReads(replicaDb.reads) > before) fromReplica++
        const revs = reply.batches.map((batch) => batch.rev)
        // Never back, never a batch at or before the position, in order, within upTo.
        expect(reply.upTo).toBeGreaterThanOrEqual(since)
        for (const [i, rev] of revs.entries()) {
          expect(rev).toBeGreaterThan(i === 0 ? since : revs[i - 1]!)
          expect(rev).toBeLessThanOrEqual(reply.upTo)
          expect(written.get(rev)).not.toBe(client.id)
        }
        if (reply.more) expect(reply.upTo).toBeGreaterThan(since)
        // A last page reaches every revision acknowledged to the client before it asked.
        else expect(reply.upTo).toBeGreaterThanOrEqual(acked)
        client.seen.push(...revs)
        client.position = reply.upTo
        return reply.more
      }
      try {
        for (let i = 0; i < 60; i++) {
          const client = clients[Math.floor(random() * 2)]!
          const roll = random()
          if (roll < 0.15) {
            paused = !paused
            await sql(replica.url, `select pg_wal_replay_${paused ? 'pause' : 'resume'}()`)
          } else if (roll < 0.55) {
            const rev = await push(handler, client.id, ++client.rev)
            written.set(rev, client.id)
            client.acked = Math.max(client.acked, rev)
          } else {
            await step(client)
          }
        }
        if (paused) await sql(replica.url, 'select pg_wal_replay_resume()')
        for (const client of clients) while (await step(client));
        for (const client of clients) {
          const others = [...written].filter(([, by]) => by !== client.id).map(([rev]) => rev)
          expect(client.seen).toEqual(others.sort((x, y) => x - y))
        }
        // The replica served some of it (lagging or not).
        expect(fromReplica).toBeGreaterThan(0)
      } finally {
        await sql(replica.url, 'select pg_wal_replay_resume()')
        await close()
      }
    }, 120_000)
  }

  it('a replica that lags more than maxReplicaLag is skipped until it catches up', async () => {
    const { handler, replicaDb, schema, close } = await setup({ maxReplicaLag: 300 })
    try {
      await push(handler, 'a', 1)
      await until(async () => (await replicaHead(schema)) === 1)
      await sql(replica.url, 'select pg_wal_replay_pause()')
      await push(handler, 'a', 2)
      await until(() => (handler.replicas[0]?.lag ?? 0) > 300)
      const before = logReads(replicaDb.reads)
      expect((await pull(handler, 'b', 0)).batches.map((batch) => batch.rev)).toEqual([1, 2])
      expect(logReads(replicaDb.reads)).toBe(before)
      await sql(replica.url, 'select pg_wal_replay_resume()')
      await until(() => handler.replicas[0]?.lag === 0 && handler.replicas[0].head === 2)
      expect((await pull(handler, 'b', 0)).batches.map((batch) => batch.rev)).toEqual([1, 2])
      expect(logReads(replicaDb.reads)).toBeGreaterThan(before)
    } finally {
      await sql(replica.url, 'select pg_wal_replay_resume()')
      await close()
    }
  }, 60_000)

  it('a replica that is down is skipped, and used again once it is back', async () => {
    const { handler, replicaDb, schema, close } = await setup()
    try {
      await push(handler, 'a', 1)
      await until(async () => (await replicaHead(schema)) === 1)
      await until(() => handler.replicas[0]?.head === 1)
      replica.down()
      // Every answer right, from the primary.
      for (let rev = 2; rev <= 4; rev++) {
        await push(handler, 'a', rev)
        expect((await pull(handler, 'b', 0)).batches.map((batch) => batch.rev)).toEqual(
          Array.from({ length: rev }, (_, i) => i + 1),
        )
      }
      expect(handler.replicas[0]?.up).toBe(false)
      replica.up()
      await until(() => handler.replicas[0]?.up === true && handler.replicas[0].head === 4)
      const before = logReads(replicaDb.reads)
      expect((await pull(handler, 'b', 2)).batches.map((batch) => batch.rev)).toEqual([3, 4])
      expect(logReads(replicaDb.reads)).toBeGreaterThan(before)
    } finally {
      await close()
    }
  }, 60_000)
})
