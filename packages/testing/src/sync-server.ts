import type { CurrentValue, PullReply, PushReply, PushRequest, RemoteBatch, WireChange } from '@changecast/core'

/** Faults and rules of the in-memory server; every field can be changed at run time with `server.configure()`. */
export interface SyncServerOptions {
  /** Delay before each answer, ms, or a [min, max] range. @default 0 */
  latency?: number | [number, number]
  /** Share of push/pull/stream requests answered with 503 or 429 (with Retry-After). @default 0 */
  failureRate?: number
  /** Retry-After sent with 429 and 503, seconds. @default 0 */
  retryAfter?: number
  /** Share of requests whose connection is dropped (the client sees a network error). @default 0 */
  dropRate?: number
  /** Share of pulled or streamed batches that are delivered twice. @default 0 */
  duplicateRate?: number
  /** Rejects a pushed batch when it returns a reason for one of its changes. */
  reject?: (change: WireChange, clientId: string) => string | undefined
  /** Randomness, for reproducible fault injection. @default Math.random */
  random?: () => number
}

/** What the server holds and what it was asked, for assertions. */
export interface SyncServer {
  /** Answers one protocol request (`…/push`, `…/pull`, `…/stream`); usable with any fetch-style server. */
  handle(request: Request): Promise<Response>
  /** Every accepted batch, in server order. */
  readonly batches: readonly RemoteBatch[]
  /** The server's current value of an entity. */
  value(table: string, key: unknown): unknown
  /** The server's current rows of a table, by key order of insertion. */
  rows(table: string): Array<{ key: unknown; value: unknown }>
  /** Push requests answered so far (including failed and replayed ones). */
  readonly pushes: number
  /** Another client ("another user") commits `changes`: stored and fanned out to every client. */
  edit(changes: WireChange[], origin?: string): RemoteBatch
  /** Changes faults and rules. */
  configure(options: Partial<SyncServerOptions>): void
  /** Ends every open stream. */
  close(): void
}

interface Stream {
  clientId: string
  send(text: string): void
  close(): void
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })

const keyId = (table: string, key: unknown) => `${table}\u0000${JSON.stringify(key)}`

/**
 * An in-memory implementation of the Changecast sync protocol (docs/protocol.md):
 * idempotent push, pull by cursor, Server-Sent Events fan-out to other clients, with
 * fault injection. The base path is free: any URL ending in /push, /pull or /stream.
 *
 * @example
 * const server = createSyncServer({ failureRate: 0.2 })
 * const worker = setupServer(...syncHandlers(server, 'https://sync.test'))
 */
export function createSyncServer(initial: SyncServerOptions = {}): SyncServer {
  const options: SyncServerOptions = { ...initial }
  const batches: RemoteBatch[] = []
  const state = new Map<string, { table: string; key: unknown; value: unknown }>()
  const replies = new Map<string, PushReply>()
  const accepted = new Map<string, number>() // clientId:rev -> server rev
  const streams = new Set<Stream>()
  let pushes = 0

  const random = () => (options.random ?? Math.random)()
  const chance = (rate = 0) => rate > 0 && random() < rate

  async function delay() {
    const { latency = 0 } = options
    const ms = Array.isArray(latency) ? latency[0] + random() * (latency[1] - latency[0]) : latency
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms))
  }

  function fault(): Response | undefined {
    if (chance(options.dropRate)) return Response.error()
    if (chance(options.failureRate)) {
      const retryAfter = String(options.retryAfter ?? 0)
      return random() < 0.5
        ? json({ error: 'overloaded' }, 503, { 'retry-after': retryAfter })
        : json({ error: 'slow down' }, 429, { 'retry-after': retryAfter })
    }
    return undefined
  }

  function append(changes: WireChange[], origin: string, tx: string, at: number): RemoteBatch {
    const batch: RemoteBatch = { rev: batches.length + 1, tx, origin, at, changes }
    batches.push(batch)
    for (const change of changes) {
      const id = keyId(change.table, change.key)
      if (change.type === 'delete') state.delete(id)
      else state.set(id, { table: change.table, key: change.key, value: change.value })
    }
    for (const stream of streams) {
      if (stream.clientId !== origin) sendBatch(stream, batch)
    }
    return batch
  }

  function sendBatch(stream: Stream, batch: RemoteBatch) {
    const event = `event: batch\nid: ${batch.rev}\ndata: ${JSON.stringify(batch)}\n\n`
    stream.send(event)
    if (chance(options.duplicateRate)) stream.send(event)
  }

  function current(changes: WireChange[]): CurrentValue[] {
    return changes.map(({ table, key }) => {
      const row = state.get(keyId(table, key))
      return row ? { table, key, value: row.value } : { table, key }
    })
  }

  async function push(request: Request): Promise<Response> {
    pushes++
    let body: PushRequest
    try {
      body = (await request.json()) as PushRequest
    } catch {
      return json({ error: 'body must be JSON' }, 400)
    }
    if (typeof body?.clientId !== 'string' || !Array.isArray(body.batches)) {
      return json({ error: 'expected { clientId, batches }' }, 400)
    }
    const idempotencyKey = request.headers.get('idempotency-key')
    const replayed = idempotencyKey ? replies.get(idempotencyKey) : undefined
    if (replayed) return json(replayed)
    const reply: PushReply = { acked: [], rejected: [] }
    for (const batch of body.batches) {
      const done = `${body.clientId}:${batch.rev}`
      if (accepted.has(done)) {
        reply.acked.push(batch.rev)
        continue
      }
      const reason = options.reject
        ? batch.changes.map((change) => options.reject!(change, body.clientId)).find(Boolean)
        : undefined
      if (reason) {
        reply.rejected.push({ rev: batch.rev, reason, current: current(batch.changes) })
        continue
      }
      accepted.set(done, append(batch.changes, body.clientId, batch.tx, batch.at).rev)
      reply.acked.push(batch.rev)
    }
    reply.cursor = String(batches.length)
    if (idempotencyKey) replies.set(idempotencyKey, reply)
    return json(reply)
  }

  function since(url: URL) {
    const cursor = Number(url.searchParams.get('since') || 0)
    return Number.isInteger(cursor) && cursor >= 0 ? cursor : 0
  }

  function pull(url: URL): Response {
    const clientId = url.searchParams.get('clientId') ?? ''
    const limit = Math.max(1, Number(url.searchParams.get('limit')) || 50)
    const page: RemoteBatch[] = []
    let cursor = since(url)
    while (cursor < batches.length && page.length < limit) {
      const batch = batches[cursor++]!
      if (batch.origin === clientId) continue
      page.push(batch)
      if (chance(options.duplicateRate)) page.push(batch)
    }
    const reply: PullReply = { batches: page, cursor: String(cursor), more: cursor < batches.length }
    return json(reply)
  }

  function stream(url: URL, request: Request): Response {
    const clientId = url.searchParams.get('clientId') ?? ''
    const encoder = new TextEncoder()
    let entry: Stream | undefined
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        entry = {
          clientId,
          send: (text) => controller.enqueue(encoder.encode(text)),
          close: () => {
            streams.delete(entry!)
            try {
              controller.close()
            } catch {
              // already closed by the client
            }
          },
        }
        streams.add(entry)
        controller.enqueue(encoder.encode('retry: 1000\n\n'))
        for (const batch of batches.slice(since(url))) {
          if (batch.origin !== clientId) sendBatch(entry, batch)
        }
      },
      cancel() {
        if (entry) streams.delete(entry)
      },
    })
    request.signal?.addEventListener('abort', () => entry?.close())
    return new Response(body, {
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
    })
  }

  return {
    async handle(request) {
      const url = new URL(request.url)
      const route = url.pathname.split('/').pop()
      await delay()
      const injected = fault()
      if (injected) return injected
      if (route === 'push' && request.method === 'POST') return push(request)
      if (route === 'pull' && request.method === 'GET') return pull(url)
      if (route === 'stream' && request.method === 'GET') return stream(url, request)
      return json({ error: `no route ${request.method} ${url.pathname}` }, 404)
    },
    get batches() {
      return batches
    },
    value: (table, key) => state.get(keyId(table, key))?.value,
    rows: (table) => [...state.values()].filter((row) => row.table === table).map(({ key, value }) => ({ key, value })),
    get pushes() {
      return pushes
    },
    edit(changes, origin = 'another-user') {
      for (const change of changes) {
        if (typeof change.table !== 'string' || change.key === undefined || change.key === null) {
          throw new TypeError('server.edit(): every change needs a table and a key.')
        }
        if (change.type !== 'delete' && change.value === undefined) {
          throw new TypeError(`server.edit(): a ${change.type} needs a value.`)
        }
      }
      return append(changes, origin, `${origin}.${batches.length + 1}`, Date.now())
    },
    configure(next) {
      Object.assign(options, next)
    },
    close() {
      for (const entry of [...streams]) entry.close()
    },
  }
}
