import {
  LIMITS,
  isName,
  nameRule,
  parsePushRequest,
  parseRevision,
  ProtocolViolation,
  wireKeyText,
  type PullReply,
  type PushReply,
  type RemoteBatch,
  type WireChange,
  type WireCurrent,
  decodeWireKey,
  encodeWireKey,
  mergedTooLarge,
  mergeUpdate,
} from '@changecast/core/protocol'
import { withFaults, type FaultOptions } from './faults.js'

/** Faults and rules of the in-memory server; every field can be changed at run time with `server.configure()`. */
export interface SyncServerOptions extends FaultOptions {
  /** Leave a client's own batches out of its pulls and streams (the protocol allows either). @default true */
  omitOwn?: boolean
  /** Milliseconds between stream heartbeats (comments). @default 15000 */
  heartbeat?: number
  /**
   * Rejects a pushed batch when it returns a reason for one of its changes: a text (code
   * `rejected`), or `{ code, reason }`.
   */
  reject?: (change: WireChange, clientId: string) => string | { code: string; reason: string } | undefined
  /** The scope of an entity, from its value (as `@changecast/server`'s `scopeOf`). @default every entity in scope `default` */
  scopeOf?: (entity: { table: string; key: unknown; value: unknown }) => string
  /**
   * The scopes the maker of a request may read and write (e.g. from a header the test sets).
   * `undefined`: every scope. @default every scope
   */
  scopes?: (request: Request) => { read: readonly string[]; write?: readonly string[] } | undefined
  /**
   * Who makes a request (e.g. from its `authorization` header): every reply then names
   * them (`principal`), a request without one is answered 401, and a client id is bound to
   * the first principal that uses it — another gets 403 with the code `principal-changed`
   * (docs/protocol.md, "Principals"). @default no authentication: replies name no principal
   */
  principal?: (request: Request) => string | undefined
  /**
   * Per table, `'replace'`: updates sent as patches replace the whole value instead of
   * merging into the server's (as `@changecast/server`'s `tables: { t: { merge: 'replace' } }`).
   * @default every table merges
   */
  merge?: Record<string, 'fields' | 'replace'>
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
  /** A copy of everything the server holds, to {@link SyncServer.restore} later. */
  backup(): SyncServerBackup
  /**
   * Restores a backup, as an operator restores a database from an older copy: the log and
   * the rows go back to what they were, under the same epoch; open streams end.
   */
  restore(backup: SyncServerBackup): void
  /**
   * Compaction: removes the changes superseded at revision `upTo` and the deletes at or below
   * it; a client whose position is older gets `mustRefetch`. @default up to the newest revision
   */
  compact(upTo?: number): void
  /** Ends every open stream. */
  close(): void
}

interface Stream {
  clientId: string
  /** The scopes it reads, undefined for all. */
  read?: ReadonlySet<string>
  /** False once its maker's scopes changed (asked before each delivery): it is then closed. */
  current(): boolean
  send(text: string): void
  close(): void
}

/** An accepted batch as kept here: each change with the scope it is in. */
interface Stored {
  batch: RemoteBatch
  scopes: string[]
}

/** What {@link SyncServer.backup} copies: opaque, for {@link SyncServer.restore}. */
export interface SyncServerBackup {
  readonly kind: 'changecast-testing-backup'
}

/** Why a batch is refused. */
interface Refusal {
  code: string
  reason: string
}

/** The entity a change names moved out of a scope: a removal there. */
type Removal = WireChange & { removed: true }

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
  let log: Stored[] = []
  let horizon = 0
  let state = new Map<string, { table: string; key: unknown; value: unknown; scope: string }>()
  // `${clientId}\0${rev}` → the tx and server revision it was accepted as.
  let accepted = new Map<string, { tx: string; serverRev: number }>()
  // Client id → the principal it is bound to.
  let owners = new Map<string, string>()
  const streams = new Set<Stream>()
  let pushes = 0

  const entity = (table: string, key: unknown) => `${table}\u0000${wireKeyText(key)}`
  const head = () => log.length

  const visible = (batch: RemoteBatch, clientId: string) => !(options.omitOwn ?? true) || batch.origin !== clientId

  /**
   * A batch as a reader of `read` sees it (undefined: none of it, or a batch that changes
   * nothing); moves between two of its scopes are no removals.
   */
  function view({ batch, scopes }: Stored, read: ReadonlySet<string> | undefined): RemoteBatch | undefined {
    const changes = read ? batch.changes.filter((_, i) => read.has(scopes[i]!)) : batch.changes
    if (changes.length === 0) return undefined
    return { ...batch, changes: changes.filter((_, i) => !hidden(changes, i)) }
  }
  const hidden = (changes: WireChange[], i: number) =>
    (changes[i] as Partial<Removal>).removed === true &&
    changes.some((later, j) => j > i && entity(later.table, later.key) === entity(changes[i]!.table, changes[i]!.key))

  /** Who makes a request (nothing when this server names no one), or the refusal to answer with. */
  function identify(request: Request, clientId: string): { principal?: string } | Response {
    if (!options.principal) return {}
    const principal = options.principal(request)
    if (principal === undefined) return problem(401, 'not authenticated')
    const owner = owners.get(clientId) ?? principal
    owners.set(clientId, owner)
    if (owner !== principal) {
      return json({ error: `client id ${clientId} belongs to another user`, code: 'principal-changed' }, 403)
    }
    return { principal }
  }

  /** What a request may read and write. */
  function access(request: Request): { read?: Set<string>; write?: Set<string> } {
    const grant = options.scopes?.(request)
    if (!grant) return {}
    return { read: new Set(grant.read), write: new Set(grant.write ?? grant.read) }
  }

  /** The scopes a pull, stream or snapshot reads: the asked ones within those it may read (sorted), or undefined for all. */
  function readScopes(url: URL, request: Request): string[] | undefined {
    const asked = url.searchParams.getAll('scope')
    const { read } = access(request)
    if (asked.length === 0) return read && [...read].sort()
    return [...new Set(read ? asked.filter((scope) => read.has(scope)) : asked)].sort()
  }

  /**
   * The changes a batch stores, each with its scope (a move: a removal in the old scope
   * first), or why it is refused.
   */
  function plan(changes: WireChange[], write: Set<string> | undefined): Stored | Refusal {
    const overlay = new Map<string, { scope: string; exists: boolean; value?: unknown }>()
    const stored: Stored = { batch: { rev: 0, tx: '', origin: '', at: 0, changes: [] }, scopes: [] }
    let merged = false
    for (let change of changes) {
      const id = entity(change.table, change.key)
      const row = state.get(id)
      const before = overlay.get(id) ?? (row ? { scope: row.scope, exists: true, value: row.value } : undefined)
      const exists = before?.exists === true
      if (change.patch && options.merge?.[change.table] !== 'replace') {
        // A merged update: its paths and operations applied to this server's value.
        const outcome = mergeUpdate(
          exists ? (structuredClone(before.value) as Record<string, unknown>) : undefined,
          change,
          `${change.table} ${wireKeyText(change.key)}`,
        )
        if (!('value' in outcome)) return outcome
        change = { ...change, value: outcome.value }
        merged = true
      }
      let scope = before?.scope ?? 'default'
      if (change.type !== 'delete' && options.scopeOf) {
        // A value scopeOf cannot place is refused, as by @changecast/server.
        try {
          scope = options.scopeOf({ table: change.table, key: decodeWireKey(change.key), value: change.value })
        } catch (error) {
          return { code: 'invalid', reason: `${change.table} ${wireKeyText(change.key)}: ${(error as Error).message}` }
        }
        if (typeof scope !== 'string' || scope === '' || scope.length > 256) {
          return {
            code: 'invalid',
            reason: `${change.table} ${wireKeyText(change.key)}: the scope must have 1–256 characters`,
          }
        }
      } else if (change.type !== 'delete') scope = 'default'
      // The same words whether the entity is elsewhere or the target scope is not writable.
      const forbidden = {
        code: 'forbidden',
        reason: `not allowed to ${change.type} ${change.table} ${wireKeyText(change.key)}`,
      }
      if (write && !write.has(scope)) return forbidden
      if (exists && write && !write.has(before.scope)) return forbidden
      if (exists && change.type !== 'delete' && before.scope !== scope) {
        const removal: Removal = { type: 'delete', table: change.table, key: change.key, removed: true }
        stored.batch.changes.push(removal)
        stored.scopes.push(before.scope)
      }
      if (change.type !== 'delete' || exists || !options.scopeOf) {
        stored.batch.changes.push(change)
        stored.scopes.push(scope)
      }
      overlay.set(id, { scope, exists: change.type !== 'delete', value: change.value })
    }
    const tooLarge = merged && mergedTooLarge(stored.batch.changes.map((change) => JSON.stringify(change)))
    return tooLarge ? { code: 'invalid', reason: tooLarge } : stored
  }

  function append(planned: Stored, origin: string, tx: string, at: number): RemoteBatch {
    const batch: RemoteBatch = { ...planned.batch, rev: head() + 1, tx, origin, at }
    const stored = { batch, scopes: planned.scopes }
    log.push(stored)
    batch.changes.forEach((change, i) => {
      if ((change as Partial<Removal>).removed) return
      const id = entity(change.table, change.key)
      if (change.type === 'delete') state.delete(id)
      else state.set(id, { table: change.table, key: change.key, value: change.value, scope: stored.scopes[i]! })
    })
    for (const stream of streams) if (visible(batch, stream.clientId)) sendBatch(stream, stored)
    return batch
  }

  function sendBatch(stream: Stream, stored: Stored) {
    // Scopes changed since it opened: closed, so the client asks again (and loads a snapshot).
    if (!stream.current()) return stream.close()
    const batch = view(stored, stream.read)
    if (batch) stream.send(`event: batch\nid: ${batch.rev}\ndata: ${JSON.stringify(batch)}\n\n`)
  }

  function current(changes: WireChange[], read: Set<string> | undefined): WireCurrent[] {
    const seen = new Set<string>()
    const list: WireCurrent[] = []
    for (const { table, key } of changes) {
      const id = entity(table, key)
      if (seen.has(id)) continue
      seen.add(id)
      const row = state.get(id)
      list.push(row && (!read || read.has(row.scope)) ? { table, key, value: row.value } : { table, key })
    }
    return list
  }

  /**
   * An ack; `current` lists, without values, the entities the batch left in a scope the
   * request may not read (written where its principal may write but not read), and, with
   * this server's value, the merged ones the client does not have: merged otherwise than the
   * value it sent, or all of them when the batch is acked again.
   */
  function ack(
    rev: number,
    serverRev: number,
    { batch, scopes }: Stored,
    read: Set<string> | undefined,
    sent: WireChange[],
    again = false,
  ) {
    const last = new Map<string, WireCurrent | undefined>()
    batch.changes.forEach((change, i) => {
      if ((change as Partial<Removal>).removed) return
      const { table, key } = change
      const hidden = change.type !== 'delete' && !!read && !read.has(scopes[i]!)
      last.set(entity(table, key), hidden ? { table, key } : undefined)
    })
    for (const { table, key, value, patch } of sent) {
      const id = entity(table, key)
      const row = state.get(id)
      if (!patch || !row || last.get(id)) continue
      if (again || JSON.stringify(row.value) !== JSON.stringify(value)) last.set(id, { table, key, value: row.value })
    }
    const current = [...last.values()].filter((item) => item !== undefined)
    return current.length > 0 ? { rev, serverRev, current } : { rev, serverRev }
  }

  /** A batch sent again (acked before): its changes with the scopes their values are in. */
  function scoped(changes: WireChange[]): Stored {
    const scopes = changes.map((change) => {
      if (change.type === 'delete' || !options.scopeOf) return 'default'
      try {
        return options.scopeOf({ table: change.table, key: decodeWireKey(change.key), value: change.value })
      } catch {
        return 'default'
      }
    })
    return { batch: { rev: 0, tx: '', origin: '', at: 0, changes }, scopes }
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
    const who = identify(request, clientId)
    if (who instanceof Response) return who
    const reply: PushReply = { epoch, ...who, acked: [], rejected: [] }
    // Checked before anything is stored, so a refused request changes nothing.
    for (const batch of body.batches) {
      const done = accepted.get(`${clientId}\u0000${batch.rev}`)
      if (done && done.tx !== batch.tx) {
        return problem(409, `rev ${batch.rev} of client ${clientId} was already used by another transaction`)
      }
    }
    const { write } = access(request)
    const scopes = readScopes(new URL(request.url), request)
    const read = scopes && new Set(scopes)
    for (const batch of body.batches) {
      const id = `${clientId}\u0000${batch.rev}`
      const done = accepted.get(id)
      if (done) {
        reply.acked.push(ack(batch.rev, done.serverRev, scoped(batch.changes), read, batch.changes, true))
        continue
      }
      // A confirming push stores nothing: what this server has no record of is unknown.
      let planned: Stored | Refusal | string | undefined = body.confirm
        ? { code: 'unknown', reason: 'this server has no record of this commit' }
        : plan(batch.changes, write)
      // `reject` sees what would be stored: merged values.
      if (options.reject && 'batch' in planned) {
        const changes = planned.batch.changes.filter((change) => !(change as Partial<Removal>).removed)
        planned = changes.map((change) => options.reject!(change, clientId)).find(Boolean) ?? planned
      }
      if (typeof planned === 'string' || 'reason' in planned) {
        const { code, reason }: Partial<Refusal> = typeof planned === 'string' ? { reason: planned } : planned
        reply.rejected.push({
          rev: batch.rev,
          ...(code === undefined ? {} : { code }),
          reason,
          serverRev: head(),
          current: current(batch.changes, read),
        })
        continue
      }
      const serverRev = append(planned, clientId, batch.tx, batch.at).rev
      accepted.set(id, { tx: batch.tx, serverRev })
      reply.acked.push(ack(batch.rev, serverRev, planned, read, batch.changes))
    }
    return json(scopes ? { ...reply, scopes } : reply)
  }

  /** `v`, `since` (required, decimal digits) and `clientId` (docs/protocol.md, "Limits") of a pull or stream. */
  function position(url: URL): number | Response {
    const since = parseRevision(url.searchParams.get('since'))
    return badQuery(url) ?? since ?? problem(400, 'since must be a revision (an integer ≥ 0, in decimal digits)')
  }

  function badQuery(url: URL): Response | undefined {
    const clientId = url.searchParams.get('clientId')
    if (url.searchParams.get('v') !== '2') return problem(400, 'unsupported protocol version (this server speaks 2)')
    if (clientId !== null && !isName(clientId)) return problem(400, nameRule('clientId'))
    return undefined
  }

  function pull(url: URL, request: Request): Response {
    const since = position(url)
    if (since instanceof Response) return since
    const clientId = url.searchParams.get('clientId') ?? ''
    const limit = Number(url.searchParams.get('limit') ?? '50')
    if (!Number.isInteger(limit) || limit < 1) return problem(400, 'limit must be a positive integer')
    const who = identify(request, clientId)
    if (who instanceof Response) return who
    const scopes = readScopes(url, request)
    const read = scopes && new Set(scopes)
    if (since < horizon && since <= head()) {
      return json({ epoch, ...who, scopes, batches: [], upTo: head(), more: false, mustRefetch: true })
    }
    const page: RemoteBatch[] = []
    let upTo = Math.min(since, head())
    let bytes = 0
    while (upTo < head() && page.length < limit) {
      const batch = view(log[upTo]!, read)
      const size = batch ? JSON.stringify(batch).length : 0
      if (page.length > 0 && bytes + size > LIMITS.pushBytes) break
      upTo++
      if (!batch || !visible(batch, clientId)) continue
      bytes += size
      page.push(batch)
    }
    const reply: PullReply = { epoch, ...who, batches: page, upTo, more: upTo < head() }
    return json(scopes ? { ...reply, scopes } : reply)
  }

  /** The newest change per entity of the readable scopes at revision `rev`, creates and updates only, in a stable order. */
  function snapshotAt(rev: number, read: ReadonlySet<string> | undefined): WireChange[] {
    const newest = new Map<string, WireChange>()
    for (const stored of log.slice(0, rev)) {
      stored.batch.changes.forEach((change, i) => {
        const scope = stored.scopes[i]!
        if (read && !read.has(scope)) return
        const id = read ? `${scope}\u0000${entity(change.table, change.key)}` : entity(change.table, change.key)
        newest.delete(id)
        newest.set(id, change)
      })
    }
    return [...newest.entries()]
      .filter(([, change]) => change.type !== 'delete')
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, change]) => change)
  }

  function snapshot(url: URL, request: Request): Response {
    const bad = badQuery(url)
    if (bad) return bad
    const who = identify(request, url.searchParams.get('clientId') ?? '')
    if (who instanceof Response) return who
    const scopes = readScopes(url, request)
    const limit = Number(url.searchParams.get('limit') ?? '1000')
    if (!Number.isInteger(limit) || limit < 1) return problem(400, 'limit must be a positive integer')
    const asked = url.searchParams.get('rev')
    const after = Number(url.searchParams.get('after') ?? '0')
    const rev = asked === null ? head() : Number(asked)
    if (!Number.isSafeInteger(rev) || rev < 0 || !Number.isSafeInteger(after) || after < 0) {
      return problem(400, 'rev and after must be integers ≥ 0')
    }
    if (rev < horizon || rev > head()) return json({ epoch, ...who, scopes, mustRefetch: true })
    const all = snapshotAt(rev, scopes && new Set(scopes))
    // At most `limit` rows and about 8 MiB (one larger row still makes a page).
    const rows: WireChange[] = []
    let bytes = 0
    for (const row of all.slice(after, after + limit)) {
      const size = JSON.stringify(row).length + 1
      if (rows.length > 0 && bytes + size > 8 * 2 ** 20) break
      rows.push(row)
      bytes += size
    }
    const end = after + rows.length
    return json({
      epoch,
      ...who,
      rev,
      scopes,
      total: after === 0 ? all.length : undefined,
      rows,
      next: end < all.length ? String(end) : undefined,
    })
  }

  function stream(url: URL, request: Request): Response {
    const since = position(url)
    if (since instanceof Response) return since
    const clientId = url.searchParams.get('clientId') ?? ''
    const who = identify(request, clientId)
    if (who instanceof Response) return who
    const scopes = readScopes(url, request)
    const encoder = new TextEncoder()
    let entry: Stream | undefined
    let timer: ReturnType<typeof setInterval> | undefined
    const refetch = since < horizon && since <= head()
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const key = JSON.stringify(scopes)
        entry = {
          clientId,
          read: scopes && new Set(scopes),
          current: () => JSON.stringify(readScopes(url, request)) === key,
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
        const hello = { epoch, ...who, head: head(), scopes, mustRefetch: refetch || undefined }
        entry.send(`retry: 1000\nevent: hello\ndata: ${JSON.stringify(hello)}\n\n`)
        if (refetch) return entry.close()
        streams.add(entry)
        for (const stored of log.slice(since)) if (visible(stored.batch, clientId)) sendBatch(entry, stored)
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
      if (route === 'pull' && request.method === 'GET') return pull(url, request)
      if (route === 'stream' && request.method === 'GET') return stream(url, request)
      if (route === 'snapshot' && request.method === 'GET') return snapshot(url, request)
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
      return log.map((stored) => stored.batch)
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
      const planned = plan(wire, undefined)
      if ('reason' in planned) throw new TypeError(`server.edit(): ${planned.reason}`)
      return append(planned, origin, `${origin}.${head() + 1}`, Date.now())
    },
    configure(next) {
      Object.assign(options, next)
      faulty.configure(next)
    },
    restart: closeStreams,
    reset() {
      closeStreams()
      epoch = newEpoch()
      log = []
      horizon = 0
      state = new Map()
      accepted = new Map()
      owners = new Map()
    },
    backup() {
      return structuredClone({
        kind: 'changecast-testing-backup' as const,
        epoch,
        log,
        horizon,
        state,
        accepted,
        owners,
      })
    },
    restore(backup) {
      closeStreams()
      const copy = structuredClone(backup) as ReturnType<SyncServer['backup']> & {
        epoch: string
        log: Stored[]
        horizon: number
        state: typeof state
        accepted: typeof accepted
        owners: typeof owners
      }
      ;({ epoch, log, horizon, state, accepted, owners } = copy)
    },
    compact(upTo = head()) {
      const to = Math.min(upTo, head())
      if (to <= horizon) return
      // An entity's newest change in a scope at or below `to` stays, unless it is a delete.
      const newest = new Set<string>()
      for (let rev = to; rev >= 1; rev--) {
        const stored = log[rev - 1]!
        const keep: number[] = []
        for (let i = stored.batch.changes.length - 1; i >= 0; i--) {
          const change = stored.batch.changes[i]!
          const id = `${stored.scopes[i]}\u0000${entity(change.table, change.key)}`
          if (!newest.has(id) && change.type !== 'delete') keep.unshift(i)
          newest.add(id)
        }
        log[rev - 1] = {
          batch: { ...stored.batch, changes: keep.map((i) => stored.batch.changes[i]!) },
          scopes: keep.map((i) => stored.scopes[i]!),
        }
      }
      horizon = to
    },
    close: closeStreams,
  }
}
