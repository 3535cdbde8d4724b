// Two `changecast-server` processes on one PostgreSQL, each with its clients: every batch
// reaches every client through either instance, and `kill -9` of one in the middle of
// pushes loses nothing and duplicates nothing once its clients reach the other.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import pg from 'pg'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { LOG_TABLE, type LogRow } from '../../core/src/log/changelog.js'
import { SYNC_TABLE } from '../../core/src/sync/store.js'
import {
  closeAll,
  installBrowserGlobals,
  openClient,
  until,
  type Client,
  type Todo,
} from '../../core/test/sync-helpers.js'
import { stream } from '@changecast/core/sync'
import { freshPostgres } from './backends.js'
import { startCli, type CliProcess } from './processes.js'

/** A load balancer in front of the instances: forwards each request to the current upstream. */
async function balancer(upstream: () => string): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    void (async () => {
      const body = request.method === 'POST' ? (Readable.toWeb(request) as ReadableStream<Uint8Array>) : undefined
      const abort = new AbortController()
      response.on('close', () => abort.abort())
      try {
        const reply = await fetch(`${upstream()}${request.url}`, {
          method: request.method,
          headers: request.headers as Record<string, string>,
          body,
          duplex: 'half',
          signal: abort.signal,
        } as RequestInit)
        response.writeHead(reply.status, Object.fromEntries(reply.headers))
        if (reply.body) {
          const reader = reply.body.getReader()
          for (let read = await reader.read(); !read.done; read = await reader.read()) response.write(read.value)
        }
        response.end()
      } catch {
        // The upstream is gone (killed): the connection breaks, as behind a real balancer.
        response.destroy()
      }
    })()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

let database: Awaited<ReturnType<typeof freshPostgres>>
let browser: ReturnType<typeof installBrowserGlobals>
const processes: CliProcess[] = []
beforeAll(async () => {
  database = await freshPostgres()
  browser = installBrowserGlobals()
}, 120_000)
afterAll(async () => {
  await closeAll()
  browser.uninstall()
  for (const process of processes) await process.stop().catch(() => undefined)
  await database.drop()
})

it('two instances on one PostgreSQL: every batch reaches both; kill -9 of one mid-push loses and duplicates nothing', async () => {
  const start = async () => {
    const instance = await startCli(['--port', '0', '--insecure-no-auth', '--database-url', database.url])
    processes.push(instance)
    return instance
  }
  const [a, b] = [await start(), await start()]
  let upstreamOfA = a.url
  const front = await balancer(() => upstreamOfA)
  const options = { pull: stream, backoff: { base: 20, cap: 200 }, channel: false as const }
  const one = await openClient({ ...options, url: front.url })
  const two = await openClient({ ...options, url: b.url })

  // Writes through each instance reach the clients of the other.
  for (let i = 1; i <= 10; i++) {
    await one.db.todos.put({ id: i, title: `one ${i}` })
    await two.db.todos.put({ id: 100 + i, title: `two ${i}` })
  }
  await until(async () => (await one.db.todos.count()) === 20 && (await two.db.todos.count()) === 20, {
    timeout: 15_000,
    what: 'both clients to have every todo',
  })

  // Client one keeps writing; its instance dies with pushes in flight; the balancer sends it to b.
  const writing = (async () => {
    for (let i = 11; i <= 60; i++) {
      await one.db.todos.put({ id: i, title: `one ${i}` })
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })()
  await until(async () => (await serverTodos()).filter((todo) => todo.id > 10 && todo.id <= 60).length >= 5, {
    timeout: 15_000,
    what: 'pushes to be under way',
  })
  await a.kill()
  upstreamOfA = b.url
  // Writes were still to come when it died: they go through b.
  expect((await serverTodos()).length).toBeLessThan(70)
  await writing
  await one.sync.flush({ attempts: 20 })
  await two.sync.flush({ attempts: 20 })
  await until(async () => (await two.db.todos.count()) === 70, {
    timeout: 15_000,
    what: 'client two to have every todo',
  })

  // Exactly once on the server: every local transaction of each client, once.
  for (const client of [one, two]) await expectOnServerOnce(client)
  const server = await serverTodos()
  expect(server).toHaveLength(70)
  for (const client of [one, two]) expect(await client.db.todos.orderBy('id').toArray()).toEqual(server)
  await front.close()
}, 180_000)

async function serverTodos(): Promise<Todo[]> {
  const client = new pg.Client({ connectionString: database.url })
  await client.connect()
  try {
    const { rows } = await client.query<{ value: string }>(
      "select value from changecast_entities where tbl = 'todos' and value is not null",
    )
    return rows.map((row) => JSON.parse(row.value) as Todo).sort((x, y) => x.id - y.id)
  } catch {
    return []
  } finally {
    await client.end()
  }
}

async function expectOnServerOnce(client: Client): Promise<void> {
  const { clientId } = (await client.db.table(SYNC_TABLE).get('state')) as { clientId: string }
  const local = (await client.db.table<LogRow>(LOG_TABLE).toArray()).filter((row) => row.source === 'local')
  const connection = new pg.Client({ connectionString: database.url })
  await connection.connect()
  const { rows } = await connection.query<{ tx: string; copies: string }>(
    'select tx, count(*) as copies from changecast_batches where origin = $1 group by tx',
    [clientId],
  )
  await connection.end()
  const copies = new Map(rows.map((row) => [row.tx, Number(row.copies)]))
  expect(local.length).toBeGreaterThan(0)
  for (const row of local) {
    expect((await client.sync.settled(row.rev)).status, `rev ${row.rev}`).toBe('acked')
    expect(copies.get(row.tx), `rev ${row.rev}`).toBe(1)
  }
  expect(rows).toHaveLength(local.length)
}
