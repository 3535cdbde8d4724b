#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { insecureNoAuth, jwt, type Authenticate } from './auth.js'
import { openPGlite } from './db/pglite.js'
import { openPostgres } from './db/postgres.js'
import type { Database } from './db/port.js'
import { createSyncHandler } from './handler.js'
import { serve } from './node.js'

const HELP = `changecast-server: the Changecast sync server (protocol 2)

Usage: changecast-server [options]

  --port <n>             port to listen on (default 8787, or $PORT)
  --host <address>       address to listen on (default 127.0.0.1)
  --base <path>          serve the protocol under this path, e.g. /sync (default: the root)
  --data <dir>           embedded PGlite data directory (default ./.changecast)
  --database-url <url>   PostgreSQL instead of PGlite (or $DATABASE_URL)
  --jwt-secret <secret>  accept HS256 bearer tokens signed with this secret (or $CHANGECAST_JWT_SECRET)
  --jwks-url <url>       accept bearer tokens signed by the keys at this JWKS URL
  --jwt-issuer <iss>     require this issuer (with --jwt-secret or --jwks-url)
  --jwt-audience <aud>   require this audience (with --jwt-secret or --jwks-url)
  --insecure-no-auth     accept every request as one anonymous user (local development only)
  --cors-origin <origin> allow browser apps from this origin (repeat, or comma-separate; * for any)
  --scope-field <field>  scope each entity by this field of its value (e.g. projectId: scope "42");
                         a user reads and writes the scopes listed in its token's \`scopes\` claim
  --retention <age>      compact the log: drop superseded changes and deletes older than this
                         (e.g. 30d, 12h, 90m); older clients load a new snapshot
  --help, --version

Without an auth option the server only starts on a loopback address, with no authentication.
Migrations run by themselves at start.`

/** Parses the command line; throws a message to print for mistakes. */
export function parseCommandLine(args: string[], env: NodeJS.ProcessEnv) {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      base: { type: 'string' },
      data: { type: 'string' },
      'database-url': { type: 'string' },
      'jwt-secret': { type: 'string' },
      'jwks-url': { type: 'string' },
      'jwt-issuer': { type: 'string' },
      'jwt-audience': { type: 'string' },
      'insecure-no-auth': { type: 'boolean' },
      'cors-origin': { type: 'string', multiple: true },
      'scope-field': { type: 'string' },
      retention: { type: 'string' },
      help: { type: 'boolean' },
      version: { type: 'boolean' },
    },
    strict: true,
  })
  const port = Number(values.port ?? env.PORT ?? 8787)
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be a port number, got ${values.port}`)
  const host = values.host ?? '127.0.0.1'
  const databaseUrl = values['database-url'] ?? env.DATABASE_URL
  if (databaseUrl && values.data)
    throw new Error('give either --data (PGlite) or --database-url (PostgreSQL), not both')
  const secret = values['jwt-secret'] ?? env.CHANGECAST_JWT_SECRET
  const jwksUrl = values['jwks-url']
  if (secret && jwksUrl) throw new Error('give either --jwt-secret or --jwks-url, not both')
  const insecure = values['insecure-no-auth'] === true
  if (insecure && (secret || jwksUrl))
    throw new Error('--insecure-no-auth cannot be combined with --jwt-secret or --jwks-url')
  const loopback = host === 'localhost' || host === '::1' || host.startsWith('127.')
  if (!secret && !jwksUrl && !insecure && !loopback) {
    throw new Error(
      `refusing to serve ${host} without authentication: pass --jwt-secret, --jwks-url, or --insecure-no-auth`,
    )
  }
  let base = values.base ?? ''
  if (base && !base.startsWith('/')) base = `/${base}`
  base = base.replace(/\/+$/, '')
  const corsOrigin = values['cors-origin']
    ?.flatMap((origin) => origin.split(',').map((part) => part.trim()))
    .filter(Boolean)
  const scopeField = values['scope-field']
  if (scopeField !== undefined && !/^[A-Za-z_$][\w$]*$/.test(scopeField)) {
    throw new Error(`--scope-field must be a field name, got ${JSON.stringify(scopeField)}`)
  }
  const retention = values.retention === undefined ? undefined : parseDuration(values.retention)
  return {
    scopeField,
    retention,
    help: values.help === true,
    version: values.version === true,
    port,
    host,
    base,
    data: values.data ?? './.changecast',
    databaseUrl,
    auth:
      secret || jwksUrl
        ? { secret, jwksUrl, issuer: values['jwt-issuer'], audience: values['jwt-audience'] }
        : undefined,
    corsOrigin: corsOrigin && corsOrigin.length > 0 ? (corsOrigin.includes('*') ? '*' : corsOrigin) : undefined,
  }
}

/** `30d`, `12h`, `90m`, `45s` or a number of milliseconds, in ms. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim())
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match?.[2] ?? 'ms']!
  const ms = match ? Number(match[1]) * unit : NaN
  if (!(ms > 0)) throw new Error(`--retention must be a duration like 30d, 12h or 90m, got ${JSON.stringify(text)}`)
  return ms
}

/** The scope of an entity: one field of its value, as text. */
export function scopeByField(field: string) {
  return ({ value }: { table: string; key: unknown; value: unknown }): string => {
    const scope = (value as Record<string, unknown> | null)?.[field]
    if (typeof scope !== 'string' && typeof scope !== 'number') {
      // The server names the entity (`tasks 1: …`) when it refuses the write.
      throw new Error(`the value has no ${field} (the scope field)`)
    }
    return String(scope)
  }
}

async function main(): Promise<void> {
  let config
  try {
    config = parseCommandLine(process.argv.slice(2), process.env)
  } catch (error) {
    console.error(`changecast-server: ${(error as Error).message}\n\n${HELP}`)
    process.exit(2)
  }
  if (config.help) return console.log(HELP)
  if (config.version) {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string
    }
    return console.log(manifest.version)
  }
  let authenticate: Authenticate
  if (config.auth) authenticate = jwt(config.auth)
  else {
    authenticate = insecureNoAuth
    console.warn(
      '\n  ⚠  changecast-server: NO AUTHENTICATION. Every request acts as one anonymous user.\n' +
        '     For local development only; pass --jwt-secret or --jwks-url anywhere else.\n',
    )
  }
  const database: Database = config.databaseUrl ? await openPostgres(config.databaseUrl) : await openPGlite(config.data)
  const sync = createSyncHandler({
    database,
    authenticate,
    basePath: config.base,
    corsOrigin: config.corsOrigin,
    scopeOf: config.scopeField ? scopeByField(config.scopeField) : undefined,
    retention: config.retention,
  })
  await sync.ready
  const server = await serve(sync, { port: config.port, host: config.host })
  const where = config.databaseUrl ? 'PostgreSQL' : `PGlite in ${config.data}`
  console.log(`changecast-server: listening on ${server.url}${config.base || '/'} (${where})`)
  let stopping = false
  const stop = async (): Promise<void> => {
    if (stopping) return
    stopping = true
    await sync.close()
    await server.close()
    await database.close()
    process.exit(0)
  }
  process.once('SIGINT', () => void stop())
  process.once('SIGTERM', () => void stop())
}

// Run when executed, not when imported (tests import parseCommandLine).
if (process.argv[1] && new URL(import.meta.url).pathname === (await import('node:fs')).realpathSync(process.argv[1])) {
  await main()
}
