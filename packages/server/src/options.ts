import type { WireChange } from '@changecast/core/protocol'
import type { Authenticate, Principal } from './auth.js'
import type { Database } from './db/port.js'
import type { ServerLimits } from './fairness.js'
import type { PageOptions } from './pages.js'
import type { Authorize, TableRules } from './rules.js'
import type { ScopeOf } from './store/model.js'

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
  /**
   * PostgreSQL streaming replicas of `database` (`openPostgres(url)` each), or promises of
   * them: pulls, snapshot pages and the catch-up of streams read from a replica that holds
   * what the request needs, in turns; pushes, backend writes and the fan-out's reader stay on
   * the primary. A replica that lags more than `maxReplicaLag` or is down is skipped. Closed
   * with the handler. @default none: every read from `database`
   */
  readDatabase?: Database | Promise<Database> | ReadonlyArray<Database | Promise<Database>>
  /** Milliseconds a read replica may lag behind the primary and still serve reads. @default 5000 */
  maxReplicaLag?: number
  /**
   * Catch-up pages any HTTP cache can serve (docs/protocol.md, "Cacheable pages"): a pull
   * from a page boundary is redirected (`303`) to the signed, credential-free address of the
   * page of its scopes, which a caching reverse proxy or a CDN may keep until it expires; so
   * many clients catching up from one position cost the server one read per page. Put a
   * cache in front of `GET …/page` (see the README). `true`: the defaults. @default off
   */
  pages?: boolean | PageOptions
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
  /**
   * Bounds that keep one user from starving the others: open streams per client and per
   * principal, and pulls and snapshot pages per principal at once (beyond them: `429` with
   * `Retry-After`). @default { streamsPerClient: 4, streamsPerPrincipal: 50, readsPerPrincipal: 1, queuedReadsPerPrincipal: 8 }
   */
  limits?: ServerLimits
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
   * Each read replica (`readDatabase`) as the last check found it: answering (`up`), its
   * head, and how far behind the primary (ms). Replicas that are down or lag more than
   * `maxReplicaLag` serve nothing until a check finds them back.
   */
  readonly replicas: ReadonlyArray<{ up: boolean; head: number; lag: number }>
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
