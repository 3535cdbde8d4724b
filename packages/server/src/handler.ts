import { Hono, type Context } from 'hono'
import { cors } from 'hono/cors'
import {
  encodeWireKey,
  LIMITS,
  isName,
  nameRule,
  parsePushRequest,
  parseRevision,
  PROTOCOL_VERSION,
  ProtocolViolation,
  readCappedText,
  type PullReply,
  type WireChange,
  wireKeyText,
} from '@changecast/core/protocol'
import {
  AuthError,
  ClientBindings,
  ForeignClientError,
  principalName,
  type Authenticate,
  type Principal,
} from './auth.js'
import type { Database, Queryable } from './db/port.js'
import { migrate } from './db/migrate.js'
import { Fanout } from './fanout.js'
import { PushQueue } from './push-queue.js'
import { Statistics } from './statistics.js'
import { names } from './names.js'
import { review, UnknownTableError, type Authorize, type TableRules } from './rules.js'
import {
  appendBackendBatch,
  batchJson,
  batchSize,
  compact,
  ConflictError,
  countSnapshot,
  push,
  readAfter,
  readMeta,
  readSnapshot,
  revisionBefore,
  type Access,
  type ScopeOf,
  type SnapshotCursor,
} from './store.js'

/** The scopes a principal may read, and write (`write` defaults to `read`). */
export interface ScopeGrant {
  read: readonly string[]
  write?: readonly string[]
}

/**
 * The default grants when `scopeOf` is set: the principal's `scopes` claim (a JWT claim), a
 * list of scopes to read and write, or `{ read: [...], write: [...] }`. No claim: no scope.
 */
export function claimScopes(principal: Principal): ScopeGrant {
  const claim = principal.claims?.scopes
  const list = (value: unknown) =>
    Array.isArray(value) ? value.filter((scope): scope is string => typeof scope === 'string') : []
  if (Array.isArray(claim)) return { read: list(claim) }
  if (claim && typeof claim === 'object') {
    const { read, write } = claim as { read?: unknown; write?: unknown }
    return { read: list(read), write: list(write) }
  }
  return { read: [] }
}

/** Options of {@link createSyncHandler}. */
export interface SyncHandlerOptions {
  /** The database (see `openPGlite` and `openPostgres`), or a promise of it. */
  database: Database | Promise<Database>
  /** Who makes each request: `jwt({ secret })`, `jwt({ jwksUrl })`, your own function, or `insecureNoAuth` for local development. */
  authenticate: Authenticate
  /**
   * The tables this server syncs, with their rules. A change to another table is refused
   * with 400. @default every table, unchecked
   */
  tables?: Record<string, TableRules>
  /** Allows or refuses each pushed change (see {@link Authorize}). @default everything allowed */
  authorize?: Authorize
  /**
   * PostgreSQL schema of the server's tables (created when missing): several servers can
   * share one database, each in its own schema. @default 'public'
   */
  schema?: string
  /** Path the protocol is served under: `/sync` serves `/sync/push`, `/sync/pull`, `/sync/stream`. @default '' */
  basePath?: string
  /** Origins of browser apps on other origins (CORS), or `'*'`. @default same origin only */
  corsOrigin?: string | string[]
  /**
   * The scope of each entity, from its value: e.g. `({ value }) => 'project:' + value.projectId`.
   * Each client then receives only the entities of the scopes its principal may read (see
   * `scopes`), and may write only to the scopes it may write. An entity whose scope changes
   * is removed from the clients that lose it. @default every entity in scope `default`
   */
  scopeOf?: ScopeOf
  /**
   * The scopes a principal may read and write, asked on every request (so a membership
   * change applies at once: its clients catch up by a new snapshot).
   * @default with `scopeOf`: the principal's `scopes` claim ({@link claimScopes}); without: every scope
   */
  scopes?: (principal: Principal) => ScopeGrant | Promise<ScopeGrant>
  /**
   * Milliseconds after which superseded changes and deletes leave the log (compaction, run
   * every `retention / 4`, at most hourly). A client whose position is older fetches a new
   * snapshot. @default kept for ever
   */
  retention?: number
  /** Most batches in one push request (more: 413). @default 500 */
  maxBatches?: number
  /** Milliseconds between reads of the log when no commit was announced. @default 1500 */
  pollInterval?: number
  /** Milliseconds between heartbeats on open streams. @default 15000 */
  heartbeat?: number
}

/** A change written by the backend itself, with its key as the app uses it (a number, string, Date…). */
export type BackendChange = Omit<WireChange, 'key'> & { key: unknown }

/** A transaction of the database driver the app uses (`pg` client, PGlite transaction). */
export interface DriverTransaction {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>
}

/**
 * The sync server: a web-standard `(request: Request) => Promise<Response>` (Node, Bun, Deno,
 * any runtime with fetch types), with the backend's own write path and lifecycle.
 */
export interface SyncHandler {
  (request: Request): Promise<Response>
  /** Resolves once migrations ran and the fan-out listens (requests wait for it anyway). */
  readonly ready: Promise<void>
  /** Streams open on this instance. */
  readonly streams: number
  /**
   * Writes changes from the backend as one batch (origin `backend` unless given): committed,
   * then streamed to every client. Resolves with its server revision.
   * @example
   * await sync.write([{ type: 'update', table: 'todos', key: 7, value: { id: 7, title: 'Renamed by a job' } }])
   */
  write(changes: readonly BackendChange[], options?: { origin?: string }): Promise<number>
  /**
   * Writes changes as part of the app's own database transaction (a `pg` client after
   * `BEGIN`, or a PGlite transaction): they reach clients exactly when that transaction
   * commits, and not at all if it rolls back.
   */
  writeWith(
    transaction: DriverTransaction,
    changes: readonly BackendChange[],
    options?: { origin?: string },
  ): Promise<number>
  /**
   * The server's current value of an entity (`key` as the app uses it), or `undefined` when
   * it does not exist (never written, or deleted).
   * @example
   * const todo = await sync.read('todos', 7)
   */
  read(table: string, key: unknown): Promise<unknown>
  /**
   * Compacts the log now: removes the changes superseded at the horizon and the deletes at or
   * below it. The horizon is the newest revision older than `olderThan` ms (default: the
   * `retention` option), or `upTo`. Resolves with the horizon and the rows removed.
   */
  compact(options?: { olderThan?: number; upTo?: number }): Promise<{ horizon: number; removed: number }>
  /** Closes every stream and stops listening; the database stays open. */
  close(): Promise<void>
}

class TooLargeError extends Error {}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })
const problem = (status: number, error: string, headers: Record<string, string> = {}) =>
  json({ error }, status, headers)

/**
 * The Changecast sync server (protocol version 2, docs/protocol.md) as a web-standard
 * handler: migrations run by themselves first; pushes are stored in the database with
 * server revisions that readers can never skip; every instance on the same database
 * streams every batch to its clients (LISTEN/NOTIFY, and a slow poll in case a
 * notification is lost).
 *
 * @example
 * import { createSyncHandler, jwt, openPostgres } from '@changecast/server'
 * const sync = createSyncHandler({
 *   database: openPostgres(process.env.DATABASE_URL!),
 *   authenticate: jwt({ secret: process.env.JWT_SECRET! }),
 *   basePath: '/sync',
 * })
 * Deno.serve(sync) // or Bun.serve({ fetch: sync }), or serve(sync) from '@changecast/server/node'
 */
export function createSyncHandler(options: SyncHandlerOptions): SyncHandler {
  const { authenticate, tables, authorize, maxBatches = 500, scopeOf, retention } = options
  const grants = options.scopes ?? (scopeOf ? claimScopes : undefined)
  if (retention !== undefined && !(retention > 0)) throw new TypeError('retention must be a positive number of ms')
  const t = names(options.schema)
  let compactor: ReturnType<typeof setInterval> | undefined
  let db!: Database
  let fanout!: Fanout
  let bindings!: ClientBindings
  let statistics: Statistics | undefined
  const pushes = new PushQueue(async (requests) => {
    const outcomes = await push(db, t, requests, { scopeOf })
    statistics?.wrote(
      requests.reduce((sum, request) => sum + request.decided.reduce((n, { batch }) => n + batch.changes.length, 0), 0),
    )
    return outcomes
  })
  const ready = (async () => {
    db = await options.database
    await migrate(db, t.schema)
    statistics = new Statistics(db, t)
    statistics.start()
    fanout = new Fanout(db, t, { pollInterval: options.pollInterval, heartbeat: options.heartbeat })
    await fanout.start()
    bindings = new ClientBindings(db, t)
    if (retention) {
      compactor = setInterval(
        () =>
          void handler
            .compact()
            .catch((error: Error) => console.error(`[changecast-server] Compaction failed: ${error.message}`)),
        Math.min(retention / 4, 3_600_000),
      )
      ;(compactor as { unref?: () => void }).unref?.()
    }
  })()
  // Requests wait; a failed start answers 503 (logged once).
  ready.catch((error: Error) => console.error(`[changecast-server] Could not start: ${error.message}`))

  const app = new Hono().basePath(options.basePath ?? '')
  if (options.corsOrigin) {
    app.use(
      '*',
      cors({
        origin: options.corsOrigin,
        allowMethods: ['GET', 'POST'],
        exposeHeaders: ['Retry-After'],
        maxAge: 600,
      }),
    )
  }

  /** The principal of a request, and proof its client id is theirs; `name`: how replies name it. */
  const identify = async (
    request: Request,
    clientId: string | null | undefined,
  ): Promise<Principal & { name: string }> => {
    const principal = await authenticate(request)
    if (!principal) throw new AuthError('not authenticated')
    if (typeof clientId !== 'string' || clientId === '' || clientId.length > 200) {
      throw new ProtocolViolation('clientId must be a non-empty string of at most 200 characters')
    }
    await bindings.check(clientId, principal)
    return { ...principal, name: await principalName(principal.id) }
  }

  /** What a principal may read and write. */
  const accessOf = async (principal: Principal): Promise<Access> => {
    if (!grants) return {}
    const grant = await grants(principal)
    return { read: new Set(grant.read), write: new Set(grant.write ?? grant.read) }
  }

  /**
   * The scopes a pull, stream or snapshot reads: those the client subscribed to (`scope=`,
   * repeated), within those its principal may read; sorted. Undefined: every scope.
   */
  const readScopes = async (c: Context, principal: Principal): Promise<string[] | undefined> => {
    const asked = c.req.queries('scope')
    const { read } = await accessOf(principal)
    if (!asked?.length) return read && [...read].sort()
    for (const scope of asked) if (scope === '') throw new ProtocolViolation('scope must not be empty')
    return [...new Set(read ? asked.filter((scope) => read.has(scope)) : asked)].sort()
  }

  app.get('/', async () => {
    const { epoch, head } = await readMeta(db, t)
    return json({ server: 'changecast', protocol: PROTOCOL_VERSION, epoch, head, streams: fanout.size })
  })

  app.post('/push', async (c) => {
    const text = await readCappedText(
      c.req.raw,
      LIMITS.pushBytes,
      () => new TooLargeError(`the body is over ${LIMITS.pushBytes} bytes`),
    )
    let body
    try {
      body = parsePushRequest(JSON.parse(text))
    } catch (error) {
      throw error instanceof ProtocolViolation ? error : new ProtocolViolation('the body is not JSON')
    }
    if (body.batches.length > maxBatches) throw new TooLargeError(`at most ${maxBatches} batches per push`)
    const large = body.batches.find((batch) => JSON.stringify(batch).length > LIMITS.batchBytes)
    if (large) throw new TooLargeError(`batch ${large.rev} is over ${LIMITS.batchBytes} bytes`)
    const principal = await identify(c.req.raw, body.clientId)
    const confirm = body.confirm === true
    const decided = []
    for (const batch of body.batches) {
      // A confirming push stores nothing: there is nothing to review.
      const refusal = confirm
        ? undefined
        : await review(batch, { tables, authorize, principal, clientId: body.clientId })
      decided.push({ batch, refusal })
    }
    // Written within the principal's grants; `current` values only of the scopes it reads now.
    const { write } = await accessOf(principal)
    const scopes = await readScopes(c, principal)
    const access = { read: scopes && new Set(scopes), write }
    const outcome = await pushes.push({ clientId: body.clientId, decided, access, confirm }, text.length)
    if (outcome instanceof ConflictError) throw outcome
    if (outcome.appended > 0) fanout.announce()
    const reply = { ...outcome.reply, principal: principal.name }
    return json(scopes ? { ...reply, scopes } : reply)
  })

  app.get('/pull', async (c) => {
    const since = position(c)
    const limit = Number(c.req.query('limit') ?? '50')
    if (!Number.isInteger(limit) || limit < 1) throw new ProtocolViolation('limit must be a positive integer')
    const clientId = clientIdOf(c)
    const principal = await identify(c.req.raw, clientId)
    const scopes = await readScopes(c, principal)
    const { epoch: logEpoch, head, horizon } = await readMeta(db, t)
    const epoch = { epoch: logEpoch, principal: principal.name }
    // The log does not reach the client's position (it was recreated, or restored from an
    // older backup): upTo below since tells the client to start over.
    if (since > head) return pullReply({ ...epoch, scopes, batches: [], upTo: head, more: false })
    // Compacted past the client's position: it must fetch a snapshot.
    if (since < horizon) {
      return pullReply({ ...epoch, scopes, batches: [], upTo: head, more: false, mustRefetch: true })
    }
    const take = Math.min(limit, 1000)
    const rows = await readAfter(db, t, since, take, { upTo: head, scopes })
    const visible = scopes && new Set(scopes)
    const page: string[] = []
    let last = since
    let bytes = 0
    let cut = false
    for (const row of rows) {
      const size = batchSize(row)
      if (page.length > 0 && bytes + size > LIMITS.pushBytes) {
        cut = true
        break
      }
      last = row.rev
      if (row.origin === clientId) continue
      const json = batchJson(row, visible)
      if (json === undefined) continue
      bytes += size
      page.push(json)
    }
    // Every batch up to head read, those of other scopes left out: the client is at head.
    const upTo = rows.length < take && !cut ? head : last
    return pullReply({ ...epoch, scopes, batches: page, upTo, more: upTo < head })
  })

  app.get('/stream', async (c) => {
    const since = position(c)
    const clientId = clientIdOf(c)!
    const principal = await identify(c.req.raw, clientId)
    const scopes = await readScopes(c, principal)
    const { epoch, head, horizon } = await readMeta(db, t)
    const headers = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' }
    if (since < horizon && since <= head) {
      const hello = JSON.stringify({ epoch, principal: principal.name, head, scopes, mustRefetch: true })
      return new Response(`event: hello\ndata: ${hello}\n\n`, { headers })
    }
    const key = JSON.stringify(scopes)
    const current = grants && (async () => JSON.stringify(await readScopes(c, principal)) === key)
    const hello = { epoch, principal: principal.name, scopes }
    return new Response(fanout.open(clientId, since, hello, c.req.raw.signal, scopes, current), {
      headers,
    })
  })

  app.get('/snapshot', async (c) => {
    version(c)
    const clientId = clientIdOf(c)
    const principal = await identify(c.req.raw, clientId)
    const scopes = await readScopes(c, principal)
    const limit = Number(c.req.query('limit') ?? '1000')
    if (!Number.isInteger(limit) || limit < 1) throw new ProtocolViolation('limit must be a positive integer')
    const asked = c.req.query('rev')
    const after = cursorOf(c.req.query('after'))
    if (after && asked === undefined) throw new ProtocolViolation('after needs the rev of the snapshot')
    const { epoch, head, horizon } = await readMeta(db, t)
    const rev = asked === undefined ? head : parseRevision(asked)
    if (rev === undefined) throw new ProtocolViolation('rev must be a revision (an integer ≥ 0, in decimal digits)')
    // Compacted past the snapshot's revision (or the log went back): start again.
    if (rev < horizon || rev > head) return json({ epoch, principal: principal.name, scopes, mustRefetch: true })
    const page = await readSnapshot(db, t, { rev, scopes, after, limit: Math.min(limit, 10_000) })
    const total = after ? undefined : await countSnapshot(db, t, rev, scopes)
    return new Response(
      `{"epoch":${JSON.stringify(epoch)},"principal":${JSON.stringify(principal.name)},"rev":${rev}` +
        `${scopes ? `,"scopes":${JSON.stringify(scopes)}` : ''}` +
        `${total === undefined ? '' : `,"total":${total}`}` +
        `${page.next ? `,"next":${JSON.stringify(JSON.stringify(page.next))}` : ''},"rows":[${page.rows.join(',')}]}`,
      { headers: { 'content-type': 'application/json' } },
    )
  })

  app.notFound((c) => problem(404, `no route ${c.req.method} ${new URL(c.req.url).pathname}`))
  app.onError((error) => {
    if (error instanceof AuthError) return problem(401, error.message, { 'www-authenticate': 'Bearer' })
    // The client holds another principal's data: it must sign out (docs/protocol.md, "Principals").
    if (error instanceof ForeignClientError) return json({ error: error.message, code: 'principal-changed' }, 403)
    if (error instanceof ProtocolViolation || error instanceof UnknownTableError) return problem(400, error.message)
    if (error instanceof TooLargeError) return problem(413, error.message)
    if (error instanceof ConflictError) return problem(409, error.message)
    console.error('[changecast-server]', error)
    return problem(500, 'internal error')
  })

  const handler = (async (request: Request): Promise<Response> => {
    try {
      await ready
    } catch {
      return problem(503, 'the sync server could not start (see its log)', { 'retry-after': '5' })
    }
    return app.fetch(request)
  }) as SyncHandler

  const backendBatch = async (tx: Queryable, changes: readonly BackendChange[], origin = 'backend') => {
    if (!(changes?.length > 0)) throw new TypeError('write(): give at least one change')
    const wire = changes.map((change) => ({ ...change, key: encodeWireKey(change.key) }))
    const batch = { rev: 1, tx: 'backend', at: 0, changes: wire }
    // The same checks as a push: a backend write the clients could not read would stop them.
    parsePushRequest({ v: PROTOCOL_VERSION, clientId: origin, batches: [batch] })
    if (JSON.stringify(batch).length > LIMITS.batchBytes)
      throw new TooLargeError(`the batch is over ${LIMITS.batchBytes} bytes`)
    return appendBackendBatch(tx, t, wire, origin, { scopeOf })
  }

  Object.defineProperty(handler, 'streams', { get: () => fanout?.size ?? 0 })
  return Object.assign(handler, {
    ready,
    async write(changes: readonly BackendChange[], { origin }: { origin?: string } = {}) {
      await ready
      const rev = await db.transaction((tx) => backendBatch(tx, changes, origin))
      statistics?.wrote(changes.length)
      fanout.announce()
      return rev
    },
    async writeWith(
      transaction: DriverTransaction,
      changes: readonly BackendChange[],
      { origin }: { origin?: string } = {},
    ) {
      await ready
      const tx: Queryable = {
        query: async <R>(sql: string, params?: readonly unknown[]) =>
          (await transaction.query(sql, params as unknown[])).rows as R[],
      }
      const rev = await backendBatch(tx, changes, origin)
      // Inside the app's transaction: delivered to every instance if, and when, it commits.
      await tx.query('select pg_notify($1, $2)', [t.channel, ''])
      statistics?.wrote(changes.length)
      return rev
    },
    async read(table: string, key: unknown) {
      await ready
      const [row] = await db.query<{ value: string | null }>(
        `select value from ${t.entities} where tbl = $1 and key = $2`,
        [table, wireKeyText(encodeWireKey(key))],
      )
      return row?.value == null ? undefined : (JSON.parse(row.value) as unknown)
    },
    async compact({ olderThan = retention, upTo }: { olderThan?: number; upTo?: number } = {}) {
      await ready
      if (upTo === undefined && olderThan === undefined)
        throw new TypeError('compact(): give olderThan or upTo (or the retention option)')
      const horizon = upTo ?? (await revisionBefore(db, t, olderThan!))
      const removed = await compact(db, t, horizon)
      statistics?.wrote(removed)
      return { horizon: (await readMeta(db, t)).horizon, removed }
    },
    async close() {
      if (compactor) clearInterval(compactor)
      await ready.catch(() => undefined)
      await statistics?.idle()
      await fanout?.close()
    },
  })
}

/** `since` and `v` of a pull or stream request. */
function version(c: Context): void {
  if (c.req.query('v') !== String(PROTOCOL_VERSION)) {
    throw new ProtocolViolation(
      `unsupported protocol version (this server speaks ${PROTOCOL_VERSION}; add v=${PROTOCOL_VERSION})`,
    )
  }
}

/** The `clientId` of a pull, stream or snapshot, when it has one (docs/protocol.md, "Limits"). */
function clientIdOf(c: Context): string | undefined {
  const clientId = c.req.query('clientId')
  if (clientId !== undefined && !isName(clientId)) throw new ProtocolViolation(nameRule('clientId'))
  return clientId
}

/** `v` and `since` of a pull or stream: `since` is required, in decimal digits. */
function position(c: Context): number {
  version(c)
  const since = parseRevision(c.req.query('since'))
  if (since === undefined) throw new ProtocolViolation('since must be a revision (an integer ≥ 0, in decimal digits)')
  return since
}

/** A snapshot page's `after`: the cursor a previous page gave as `next`. */
function cursorOf(text: string | undefined): SnapshotCursor | undefined {
  if (text === undefined) return undefined
  let cursor: unknown
  try {
    cursor = JSON.parse(text)
  } catch {
    // Reported below.
  }
  const [scope, table, key] = Array.isArray(cursor) ? (cursor as unknown[]) : []
  if (
    !Array.isArray(cursor) ||
    cursor.length !== 3 ||
    (scope !== null && typeof scope !== 'string') ||
    typeof table !== 'string' ||
    typeof key !== 'string'
  ) {
    throw new ProtocolViolation('after must be the next cursor of the previous snapshot page')
  }
  return cursor as SnapshotCursor
}

/** A pull reply whose batches are JSON text already. */
function pullReply({
  epoch,
  principal,
  scopes,
  batches,
  upTo,
  more,
  mustRefetch,
}: Omit<PullReply, 'batches'> & { batches: string[]; scopes?: string[]; mustRefetch?: boolean }): Response {
  return new Response(
    `{"epoch":${JSON.stringify(epoch)}${principal === undefined ? '' : `,"principal":${JSON.stringify(principal)}`}` +
      `${scopes ? `,"scopes":${JSON.stringify(scopes)}` : ''}` +
      `${mustRefetch ? ',"mustRefetch":true' : ''},"batches":[${batches.join(',')}],"upTo":${upTo},"more":${more}}`,
    {
      headers: { 'content-type': 'application/json' },
    },
  )
}
