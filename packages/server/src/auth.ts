import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import type { Queryable } from './db/port.js'
import type { Names } from './names.js'

/** Who is making a request. */
export interface Principal {
  /** Stable id of the user (a JWT's `sub`). */
  id: string
  /** Everything else known about them (a JWT's claims). */
  claims?: Record<string, unknown>
}

/**
 * Finds the principal of a request: a {@link Principal}, or `undefined` (answered 401). Throw
 * an {@link AuthError} to answer 401 with a message of your own.
 */
export type Authenticate = (request: Request) => Principal | undefined | Promise<Principal | undefined>

/** The request cannot be authenticated; its message goes back with the 401. */
export class AuthError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'AuthError'
  }
}

export interface JwtOptions {
  /** Shared secret for HS256 tokens. */
  secret?: string
  /** URL of a JSON Web Key Set (RS256, ES256… tokens from an identity provider). */
  jwksUrl?: string
  /** Expected `iss`, when given. */
  issuer?: string
  /** Expected `aud`, when given. */
  audience?: string
}

/**
 * Bearer JSON Web Tokens (`authorization: Bearer <jwt>`), checked with `jose`: signature,
 * expiry, and `iss`/`aud` when configured. The principal is the token's `sub`.
 *
 * @example
 * createSyncHandler({ database, authenticate: jwt({ jwksUrl: 'https://auth.example.com/.well-known/jwks.json' }) })
 */
export function jwt(options: JwtOptions): Authenticate {
  const { secret, jwksUrl, issuer, audience } = options
  if (!secret === !jwksUrl) throw new TypeError('jwt(): give either `secret` or `jwksUrl`.')
  const key: Uint8Array | JWTVerifyGetKey = secret
    ? new TextEncoder().encode(secret)
    : createRemoteJWKSet(new URL(jwksUrl!))
  return async (request) => {
    const header = request.headers.get('authorization')
    const token = header?.match(/^Bearer\s+(.+)$/i)?.[1]
    if (!token) throw new AuthError('missing bearer token (authorization: Bearer <jwt>)')
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, key as Uint8Array, { issuer, audience }))
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw new AuthError('the token has expired')
      if (error instanceof errors.JWTClaimValidationFailed)
        throw new AuthError(`the token is not accepted: ${error.message}`)
      throw new AuthError('the token is not valid')
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new AuthError('the token has no subject (sub)')
    return { id: payload.sub, claims: payload }
  }
}

const names = new Map<string, string>()

/**
 * How replies name a principal (docs/protocol.md, "Principals"): a hash of its id, the same
 * on every instance and across restarts, that does not disclose the id (an e-mail address,
 * say) to whoever reads the replies.
 */
export async function principalName(id: string): Promise<string> {
  let name = names.get(id)
  if (name === undefined) {
    const bytes = new TextEncoder().encode(`changecast-principal\u0000${id}`)
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)).slice(0, 16)
    name = btoa(String.fromCharCode(...digest))
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .replace(/=+$/, '')
    if (names.size > 10_000) names.clear()
    names.set(id, name)
  }
  return name
}

/** No authentication: every request is the same anonymous principal. For local development only. */
export const insecureNoAuth: Authenticate = () => ({ id: 'anonymous' })

/** The client id belongs to another principal (answered 403). */
export class ForeignClientError extends Error {
  constructor(clientId: string) {
    super(`client id ${clientId} belongs to another user`)
    this.name = 'ForeignClientError'
  }
}

/**
 * Binds client ids to principals: the first principal to use a client id owns it, and no
 * other may push, pull or stream as that client. Bindings are cached in memory.
 */
export class ClientBindings {
  readonly #db: Queryable
  readonly #t: Names
  readonly #known = new Map<string, string>()

  constructor(db: Queryable, t: Names) {
    this.#db = db
    this.#t = t
  }

  async check(clientId: string, principal: Principal): Promise<void> {
    let owner = this.#known.get(clientId)
    if (owner === undefined) {
      const inserted = await this.#db.query<{ principal: string }>(
        `insert into ${this.#t.clients} (client_id, principal) values ($1, $2) on conflict (client_id) do nothing returning principal`,
        [clientId, principal.id],
      )
      owner =
        inserted[0]?.principal ??
        (
          await this.#db.query<{ principal: string }>(`select principal from ${this.#t.clients} where client_id = $1`, [
            clientId,
          ])
        )[0]!.principal
      if (this.#known.size > 50_000) this.#known.clear()
      this.#known.set(clientId, owner)
    }
    if (owner !== principal.id) throw new ForeignClientError(clientId)
  }
}
