import type { Scoping } from '../store/push.js'
import type { Context } from 'hono'
import { isName, nameRule, parseRevision, PROTOCOL_VERSION, ProtocolViolation } from '@changecast/core/protocol'
import { AuthError, principalName, type ClientBindings, type Principal } from '../auth.js'
import type { Database } from '../db/port.js'
import type { Fairness } from '../fairness.js'
import type { Fanout } from '../fanout.js'
import type { Names } from '../names.js'
import type { SyncHandlerOptions, ScopeGrant } from '../options.js'
import type { PushQueue } from '../push-queue.js'
import type { Replicas } from '../replicas.js'
import type { Pages } from '../pages.js'
import type { Access, ScopeOf } from '../store/model.js'
import type { SnapshotCursor } from '../store/snapshot.js'

/** What every route works with (the database parts are set once the server is ready). */
export interface Server {
  readonly options: SyncHandlerOptions
  readonly scopeOf?: ScopeOf
  /** How pushes and backend writes place changes in scopes and merge updates. */
  readonly scoping: Scoping
  /** The scopes a principal may read and write; undefined: every scope. */
  readonly grants?: (principal: Principal) => ScopeGrant | Promise<ScopeGrant>
  readonly t: Names
  readonly pushes: PushQueue
  readonly fairness: Fairness
  db: Database
  /** Read replicas, when the server has some (`readDatabase`). */
  replicas?: Replicas
  /** Cacheable catch-up pages, when on (`pages`). */
  pages?: Pages
  fanout: Fanout
  bindings: ClientBindings
}

/** A request whose body is over a limit (413). */
export class TooLargeError extends Error {}

export const json = (body: unknown, status = 200, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  })
export const problem = (status: number, error: string, headers: Record<string, string> = {}): Response =>
  json({ error }, status, headers)

/** A principal as replies name it. */
export type Named = Principal & { name: string }

/**
 * The principal of a request, and proof its client id is theirs; `name`: how replies name
 * it. `admit` runs first, once the principal is known (a cheap check that may refuse the
 * request before the database is asked anything).
 */
export async function identify(
  server: Server,
  request: Request,
  clientId: string | undefined,
  admit?: (principal: Principal, clientId: string) => void,
): Promise<Named> {
  const principal = await server.options.authenticate(request)
  if (!principal) throw new AuthError('not authenticated')
  if (typeof clientId !== 'string' || !isName(clientId)) throw new ProtocolViolation(nameRule('clientId'))
  admit?.(principal, clientId)
  await server.bindings.check(clientId, principal)
  return { ...principal, name: await principalName(principal.id) }
}

/** What a principal may read and write. */
export async function accessOf(server: Server, principal: Principal): Promise<Access> {
  if (!server.grants) return {}
  const grant = await server.grants(principal)
  return { read: new Set(grant.read), write: new Set(grant.write ?? grant.read) }
}

/**
 * The scopes a pull, stream or snapshot reads: those the client subscribed to (`scope=`,
 * repeated), within those its principal may read; sorted. Undefined: every scope.
 */
export async function readScopes(
  server: Server,
  asked: readonly string[] | undefined,
  principal: Principal,
): Promise<string[] | undefined> {
  const { read } = await accessOf(server, principal)
  if (!asked?.length) return read && [...read].sort()
  for (const scope of asked) if (scope === '') throw new ProtocolViolation('scope must not be empty')
  return [...new Set(read ? asked.filter((scope) => read.has(scope)) : asked)].sort()
}

/** `v` of a pull, stream or snapshot request. */
export function version(c: Context): void {
  if (c.req.query('v') !== String(PROTOCOL_VERSION)) {
    throw new ProtocolViolation(
      `unsupported protocol version (this server speaks ${PROTOCOL_VERSION}; add v=${PROTOCOL_VERSION})`,
    )
  }
}

/** The `clientId` of a pull, stream or snapshot, when it has one (docs/protocol.md, "Limits"). */
export function clientIdOf(c: Context): string | undefined {
  const clientId = c.req.query('clientId')
  if (clientId !== undefined && !isName(clientId)) throw new ProtocolViolation(nameRule('clientId'))
  return clientId
}

/** `v` and `since` of a pull or stream: `since` is required, in decimal digits. */
export function position(c: Context): number {
  version(c)
  const since = parseRevision(c.req.query('since'))
  if (since === undefined) throw new ProtocolViolation('since must be a revision (an integer ≥ 0, in decimal digits)')
  return since
}

/** A `limit` query: a positive integer, `fallback` when absent. */
export function limitOf(c: Context, fallback: number): number {
  const limit = Number(c.req.query('limit') ?? fallback)
  if (!Number.isInteger(limit) || limit < 1) throw new ProtocolViolation('limit must be a positive integer')
  return limit
}

/** A snapshot page's `after`: the cursor a previous page gave as `next`. */
export function cursorOf(text: string | undefined): SnapshotCursor | undefined {
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
