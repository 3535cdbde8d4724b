import { Hono } from 'hono'
import { cors } from 'hono/cors'
import { PROTOCOL_VERSION, ProtocolViolation } from '@changecast/core/protocol'
import { AuthError, ClientBindings, ForeignClientError } from './auth.js'
import { backend } from './backend.js'
import { migrate } from './db/migrate.js'
import type { Database } from './db/port.js'
import { BusyError, Fairness } from './fairness.js'
import { Fanout } from './fanout.js'
import { names } from './names.js'
import { claimScopes, type SyncHandler, type SyncHandlerOptions } from './options.js'
import { PushQueue } from './push-queue.js'
import { replacedTables, UnknownTableError } from './rules.js'
import { json, problem, TooLargeError, type Server } from './routes/context.js'
import { pageRoute } from './routes/page.js'
import { pullRoute } from './routes/pull.js'
import { pushRoute } from './routes/push.js'
import { Replicas } from './replicas.js'
import { Pages } from './pages.js'
import { snapshotRoute } from './routes/snapshot.js'
import { streamRoute } from './routes/stream.js'
import { readMeta } from './store/model.js'
import { ConflictError, push, type Scoping } from './store/push.js'
import { Statistics } from './statistics.js'

export { claimScopes }
export type { PageOptions } from './pages.js'
export type { BackendChange, DriverTransaction, ScopeGrant, SyncHandler, SyncHandlerOptions } from './options.js'

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
  const { scopeOf, retention } = options
  const scoping: Scoping = { scopeOf, replace: replacedTables(options.tables) }
  if (retention !== undefined && !(retention > 0)) throw new TypeError('retention must be a positive number of ms')
  let compactor: ReturnType<typeof setInterval> | undefined
  let statistics: Statistics | undefined
  const server = {
    options,
    scopeOf,
    scoping,
    grants: options.scopes ?? (scopeOf ? claimScopes : undefined),
    t: names(options.schema),
    fairness: new Fairness(options.limits),
    pushes: new PushQueue(async (requests) => {
      const outcomes = await push(server.db, server.t, requests, scoping)
      statistics?.wrote(
        requests.reduce(
          (sum, request) => sum + request.decided.reduce((n, { batch }) => n + batch.changes.length, 0),
          0,
        ),
      )
      return outcomes
    }),
  } as Server
  const ready = (async () => {
    server.db = await options.database
    await migrate(server.db, server.t.schema)
    statistics = new Statistics(server.db, server.t)
    statistics.start()
    server.fanout = new Fanout(server.db, server.t, {
      pollInterval: options.pollInterval,
      heartbeat: options.heartbeat,
    })
    const replicas: Array<Database | Promise<Database>> = [options.readDatabase ?? []].flat()
    if (replicas.length > 0) {
      if (server.db.kind !== 'postgres') throw new TypeError('readDatabase needs PostgreSQL as the database')
      server.replicas = new Replicas(
        server.db,
        await Promise.all(replicas.map((db) => Promise.resolve(db))),
        server.t,
        {
          maxLag: options.maxReplicaLag,
        },
      )
      server.fanout.onHead = (head) => server.replicas!.seen(head)
    }
    await server.fanout.start()
    await server.replicas?.start()
    if (options.pages) {
      server.pages = new Pages(server.db, server.t, options.pages === true ? {} : options.pages)
      await server.pages.ready
    }
    server.bindings = new ClientBindings(server.db, server.t)
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
      cors({ origin: options.corsOrigin, allowMethods: ['GET', 'POST'], exposeHeaders: ['Retry-After'], maxAge: 600 }),
    )
  }
  app.get('/', async () => {
    const { epoch, head } = await readMeta(server.db, server.t)
    return json({ server: 'changecast', protocol: PROTOCOL_VERSION, epoch, head, streams: server.fanout.size })
  })
  app.post('/push', (c) => pushRoute(server, c))
  app.get('/pull', (c) => pullRoute(server, c))
  app.get('/stream', (c) => streamRoute(server, c))
  app.get('/snapshot', (c) => snapshotRoute(server, c))
  app.get('/page', (c) => pageRoute(server, c))
  app.notFound((c) => problem(404, `no route ${c.req.method} ${new URL(c.req.url).pathname}`))
  app.onError(answerError)

  const handler = (async (request: Request): Promise<Response> => {
    try {
      await ready
    } catch {
      return problem(503, 'the sync server could not start (see its log)', { 'retry-after': '5' })
    }
    return app.fetch(request)
  }) as SyncHandler

  Object.defineProperty(handler, 'streams', { get: () => server.fanout?.size ?? 0 })
  Object.defineProperty(handler, 'replicas', { get: () => server.replicas?.state ?? [] })
  return Object.assign(handler, {
    ready,
    ...backend(server, ready, (changes) => statistics?.wrote(changes)),
    async close() {
      if (compactor) clearInterval(compactor)
      await ready.catch(() => undefined)
      await statistics?.idle()
      await server.fanout?.close()
      await server.replicas?.close()
    },
  })
}

/** The answer to a request that failed: 4xx for the client's mistakes, 500 for the server's own. */
function answerError(error: Error): Response {
  if (error instanceof AuthError) return problem(401, error.message, { 'www-authenticate': 'Bearer' })
  // The client holds another principal's data: it must sign out (docs/protocol.md, "Principals").
  if (error instanceof ForeignClientError) return json({ error: error.message, code: 'principal-changed' }, 403)
  if (error instanceof ProtocolViolation || error instanceof UnknownTableError) return problem(400, error.message)
  if (error instanceof TooLargeError) return problem(413, error.message)
  if (error instanceof ConflictError) return problem(409, error.message)
  if (error instanceof BusyError) return problem(429, error.message, { 'retry-after': String(error.retryAfter) })
  console.error('[changecast-server]', error)
  return problem(500, 'internal error')
}
