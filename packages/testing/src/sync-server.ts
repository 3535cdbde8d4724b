import {
  LIMITS,
  parsePushRequest,
  ProtocolViolation,
  wireKeyText,
  type PullReply,
  type PushReply,
  type RemoteBatch,
  type WireChange,
  type WireCurrent,
  decodeWireKey,
  encodeWireKey,
} from '@changecast/core/protocol'
import { withFaults, type FaultOptions } from './faults.js'

/** Faults and rules of the in-memory server; every field can be changed at run time with `server.configure()`. */
export interface SyncServerOptions extends FaultOptions {
  /** Leave a client's own batches out of its pulls and streams (the protocol allows either). @default true */
  omitOwn?: boolean
  /** Milliseconds between stream heartbeats (comments). @default 15000 */
  heartbeat?: number
  /** Rejects a pushed batch when it returns a reason for one of its changes. */
  reject?: (change: WireChange, clientId: string) => string | undefined
}

/** An in-memory sync server, and what it holds, for assertions. */
export interface SyncServer {
  /** Answers one protocol request (`…/push`, `…/pull`, `…/stream`); never throws. */
  handle(request: Request): Promise<Response>
  /** Every accepted batch, in server order. */
  readonly batches: readonly RemoteBatch[]
  /** The id of the server's log; changes on `reset()`. */
  readonly epoch: string
  /** The server's current value of an entity (`key` as the app uses it: a number, string, Date, array…). */
  value(table: string, key: unknown): unknown
  /** The server's current rows of a table, in the order they were first written. */
  rows(table: string): Array<{ key: unknown; value: unknown }>
  /** Push requests answered so far (including failed ones). */
  readonly pushes: number
  /** Streams open right now. */
  readonly streams: number
  /** Another client ("another user") commits `changes` (keys as the app uses them): stored and fanned out. */
  edit(changes: Array<Omit<WireChange, 'key'> & { key: unknown }>, origin?: string): RemoteBatch
  /** Changes faults and rules. */
  configure(options: Partial<SyncServerOptions>): void
  /** A restart: every open stream ends; the log stays. */
  restart(): void
  /** Data loss: the log and every row are gone, and the epoch changes. */
  reset(): void
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
const problem = (status: number, error: string) => json({ error }, status)

const newEpoch = () => Math.random().toString(36).slice(2, 10)

/**
 * An in-memory implementation of the Changecast sync protocol (docs/protocol.md, version
 * 2): idempotent push answering server revisions, pull by revision, Server-Sent Events
 * fan-out, request validation, with fault injection. The base path is free: any URL
 * ending in /push, /pull or /stream.
 *
 * @example
 * const server = createSyncServer({ failureRate: 0.2 })
 * setupServer(...syncHandlers(server, 'https://sync.test')).listen()
 */
export function createSyncServer(initial: SyncServerOptions = {}): SyncServer {
  const options: SyncServerOptions = { ...initial }
  let epoch = newEpoch()
  let batches: RemoteBatch[] = []
  let state = new Map<string, { table: string; key: unknown; value: unknown }>()
  // `${clientId}\0${rev}` → the tx and server revision it was accepted as.
  let accepted = new Map<string, { tx: string; serverRev: number }>()
  const streams = new Set<Stream>()
  let pushes = 0

  const entity = (table: string, key: unknown) => `${table}\u0000${wireKeyText(key)}`
  const head = () => batches.length

  const visible = (batch: RemoteBatch, clientId: string) => !(options.omitOwn ?? true) || batch.origin !== clientId

  function append(changes: WireChange[], origin: string, tx: string, at: number): RemoteBatch {
    const batch: RemoteBatch = { rev: head() + 1, tx, origin, at, changes }
    batches.push(batch)
    for (const change of changes) {
      const id = entity(change.table, change.key)
      if (change.type === 'delete') state.delete(id)
      else state.set(id, { table: change.table, key: change.key, value: change.value })
    }
    for (const stream of streams) if (visible(batch, stream.clientId)) sendBatch(stream, batch)
    return batch
  }

  function sendBatch(stream: Stream, batch: RemoteBatch) {
    stream.send(`event: batch\nid: ${batch.rev}\ndata: ${JSON.stringify(batch)}\n\n`)
  }

  function current(changes: WireChange[]): WireCurrent[] {
    const seen = new Set<string>()
    const list: WireCurrent[] = []
    for (const { table, key } of changes) {
      const id = entity(table, key)
      if (seen.has(id)) continue
      seen.add(id)
      const row = state.get(id)
      list.push(row ? { table, key, value: row.value } : { table, key })
    }
    return list
  }

  async function push(request: Request): Promise<Response> {
    const text = await request.text()
    if (text.length > LIMITS.pushBytes) return problem(413, `the body is over ${LIMITS.pushBytes} bytes`)
    let body
    try {
      body = parsePushRequest(JSON.parse(text))
    } catch (error) {
      return problem(400, error instanceof ProtocolViolation ? error.message : 'the body is not JSON')
    }
    const { clientId } = body
    const large = body.batches.find((batch) => JSON.stringify(batch).length > LIMITS.batchBytes)
    if (large) return problem(413, `batch ${large.rev} is over ${LIMITS.batchBytes} bytes`)
    const reply: PushReply = { epoch, acked: [], rejected: [] }
    // Checked before anything is stored, so a refused request changes nothing.
    for (const batch of body.batches) {
      const done = accepted.get(`${clientId}\u0000${batch.rev}`)
      if (done && done.tx !== batch.tx) {
        return problem(409, `rev ${batch.rev} of client ${clientId} was already used by another transaction`)
      }
    }
    for (const batch of body.batches) {
      const id = `${clientId}\u0000${batch.rev}`
      const done = accepted.get(id)
      if (done) {
        reply.acked.push({ rev: batch.rev, serverRev: done.serverRev })
        continue
      }
      const reason = options.reject
        ? batch.changes.map((change) => options.reject!(change, clientId)).find(Boolean)
        : undefined
      if (reason) {
        reply.rejected.push({ rev: batch.rev, reason, serverRev: head(), current: current(batch.changes) })
        continue
      }
      const serverRev = append(batch.changes, clientId, batch.tx, batch.at).rev
      accepted.set(id, { tx: batch.tx, serverRev })
      reply.acked.push({ rev: batch.rev, serverRev })
    }
    return json(reply)
  }

  function position(url: URL): number | Response {
    const since = Number(url.searchParams.get('since') ?? '0')
    if (url.searchParams.get('v') !== '2') return problem(400, 'unsupported protocol version (this server speaks 2)')
    return Number.isSafeInteger(since) && since >= 0 ? since : problem(400, 'since must be a revision (an integer ≥ 0)')
  }

  function pull(url: URL): Response {
    const since = position(url)
    if (since instanceof Response) return since
    const clientId = url.searchParams.get('clientId') ?? ''
    const limit = Number(url.searchParams.get('limit') ?? '50')
    if (!Number.isInteger(limit) || limit < 1) return problem(400, 'limit must be a positive integer')
    const page: RemoteBatch[] = []
    let upTo = Math.min(since, head())
    let bytes = 0
    while (upTo < head() && page.length < limit) {
      const batch = batches[upTo]!
      const size = JSON.stringify(batch).length
      if (page.length > 0 && bytes + size > LIMITS.pushBytes) break
      upTo++
      if (!visible(batch, clientId)) continue
      bytes += size
      page.push(batch)
    }
    const reply: PullReply = { epoch, batches: page, upTo, more: upTo < head() }
    return json(reply)
  }

  function stream(url: URL, request: Request): Response {
    const since = position(url)
    if (since instanceof Response) return since
    const clientId = url.searchParams.get('clientId') ?? ''
    const encoder = new TextEncoder()
    let entry: Stream | undefined
    let timer: ReturnType<typeof setInterval> | undefined
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        entry = {
          clientId,
          send: (text) => {
            try {
              controller.enqueue(encoder.encode(text))
            } catch {
              entry?.close()
            }
          },
          close: () => {
            clearInterval(timer)
            streams.delete(entry!)
            try {
              controller.close()
            } catch {
              // already closed by the client
            }
          },
        }
        streams.add(entry)
        entry.send(`retry: 1000\nevent: hello\ndata: ${JSON.stringify({ epoch, head: head() })}\n\n`)
        for (const batch of batches.slice(since)) if (visible(batch, clientId)) sendBatch(entry, batch)
        timer = setInterval(() => entry?.send(': heartbeat\n\n'), options.heartbeat ?? 15_000)
      },
      cancel() {
        clearInterval(timer)
        if (entry) streams.delete(entry)
      },
    })
    request.signal?.addEventListener('abort', () => entry?.close())
    return new Response(body, {
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
    })
  }

  function closeStreams() {
    for (const entry of [...streams]) entry.close()
  }

  const faulty = withFaults(async (request) => {
    try {
      const url = new URL(request.url)
      const route = url.pathname.split('/').pop()
      if (route === 'push' && request.method === 'POST') return await push(request)
      if (route === 'pull' && request.method === 'GET') return pull(url)
      if (route === 'stream' && request.method === 'GET') return stream(url, request)
      return problem(404, `no route ${request.method} ${url.pathname}`)
    } catch (error) {
      return problem(500, `the test server failed: ${String(error)}`)
    }
  }, options)

  return {
    handle(request) {
      if (new URL(request.url).pathname.endsWith('/push')) pushes++
      return faulty(request)
    },
    get batches() {
      return batches
    },
    get epoch() {
      return epoch
    },
    value: (table, key) => state.get(entity(table, encodeWireKey(key)))?.value,
    rows: (table) =>
      [...state.values()]
        .filter((row) => row.table === table)
        .map(({ key, value }) => ({ key: decodeWireKey(key), value })),
    get pushes() {
      return pushes
    },
    get streams() {
      return streams.size
    },
    edit(changes, origin = 'another-user') {
      const wire = changes.map((change): WireChange => {
        if (typeof change.table !== 'string' || change.key === undefined || change.key === null) {
          throw new TypeError('server.edit(): every change needs a table and a key.')
        }
        if (change.type !== 'delete' && change.value === undefined) {
          throw new TypeError(`server.edit(): a ${change.type} needs a value.`)
        }
        return { ...change, key: encodeWireKey(change.key) }
      })
      return append(wire, origin, `${origin}.${head() + 1}`, Date.now())
    },
    configure(next) {
      Object.assign(options, next)
      faulty.configure(next)
    },
    restart: closeStreams,
    reset() {
      closeStreams()
      epoch = newEpoch()
      batches = []
      state = new Map()
      accepted = new Map()
    },
    close: closeStreams,
  }
}
