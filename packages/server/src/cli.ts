#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { insecureNoAuth, jwt, type Authenticate } from './auth.js'
import { DataDirectoryError, inspectDataDirectory } from './db/data-directory.js'
import { openPGlite } from './db/pglite.js'
import { openPostgres } from './db/postgres.js'
import type { Database } from './db/port.js'
import type { ServerLimits } from './fairness.js'
import { createSyncHandler, type SyncHandler } from './handler.js'
import { serve, type NodeServer } from './node.js'

const HELP = `changecast-server: the Changecast sync server (protocol 2)

Usage: changecast-server [options]

  --port <n>             port to listen on (default 8787, or $PORT)
  --host <address>       address to listen on (default 127.0.0.1)
  --base <path>          serve the protocol under this path, e.g. /sync (default: the root)
  --data <dir>           embedded PGlite data directory (default ./.changecast)
  --database-url <url>   PostgreSQL instead of PGlite (or $DATABASE_URL)
  --read-database-url <url>  a streaming replica of that PostgreSQL to serve pulls, snapshots and
                         stream catch-ups from (repeat for several); pushes stay on the primary
  --max-replica-lag <age>    skip a replica further behind than this (default 5s)
  --cacheable-pages      redirect catch-ups to signed pages that a caching proxy or CDN in front
                         of …/page may keep, so many clients cost one read per page (see the README)
  --page-revisions <n>   revisions each cacheable page spans (default 1000)
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
  --streams-per-client <n>  most open streams of one client id (default 4; more: 429)
  --streams-per-user <n>    most open streams of one user, over all its clients (default 50)
  --reads-per-user <n>      pulls and snapshot pages of one user read at once (default 1; 8 more wait)
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
      'read-database-url': { type: 'string', multiple: true },
      'max-replica-lag': { type: 'string' },
      'cacheable-pages': { type: 'boolean' },
      'page-revisions': { type: 'string' },
      'jwt-secret': { type: 'string' },
      'jwks-url': { type: 'string' },
      'jwt-issuer': { type: 'string' },
      'jwt-audience': { type: 'string' },
      'insecure-no-auth': { type: 'boolean' },
      'cors-origin': { type: 'string', multiple: true },
      'scope-field': { type: 'string' },
      retention: { type: 'string' },
      'streams-per-client': { type: 'string' },
      'streams-per-user': { type: 'string' },
      'reads-per-user': { type: 'string' },
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
  const readDatabaseUrls = values['read-database-url'] ?? []
  if (readDatabaseUrls.length > 0 && !databaseUrl) {
    throw new Error('--read-database-url needs --database-url (replicas of a PostgreSQL primary)')
  }
  const maxReplicaLag =
    values['max-replica-lag'] === undefined ? undefined : parseDuration(values['max-replica-lag'], '--max-replica-lag')
  const pageRevisions = values['page-revisions']
  if (pageRevisions !== undefined && !/^[1-9]\d*$/.test(pageRevisions)) {
    throw new Error(`--page-revisions must be a positive whole number, got ${JSON.stringify(pageRevisions)}`)
  }
  if (pageRevisions !== undefined && !values['cacheable-pages']) {
    throw new Error('--page-revisions needs --cacheable-pages')
  }
  const pages = values['cacheable-pages']
    ? { revisions: pageRevisions === undefined ? undefined : Number(pageRevisions) }
    : undefined
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
  const retention = values.retention === undefined ? undefined : parseDuration(values.retention, '--retention')
  const count = (name: 'streams-per-client' | 'streams-per-user' | 'reads-per-user') => {
    const text = values[name]
    if (text === undefined) return undefined
    if (!/^[1-9]\d*$/.test(text))
      throw new Error(`--${name} must be a positive whole number, got ${JSON.stringify(text)}`)
    return Number(text)
  }
  const limits = Object.fromEntries(
    Object.entries({
      streamsPerClient: count('streams-per-client'),
      streamsPerPrincipal: count('streams-per-user'),
      readsPerPrincipal: count('reads-per-user'),
    }).filter(([, value]) => value !== undefined),
  ) as ServerLimits
  return {
    limits,
    scopeField,
    retention,
    help: values.help === true,
    version: values.version === true,
    port,
    host,
    base,
    data: values.data ?? './.changecast',
    databaseUrl,
    readDatabaseUrls,
    maxReplicaLag,
    pages,
    auth:
      secret || jwksUrl
        ? { secret, jwksUrl, issuer: values['jwt-issuer'], audience: values['jwt-audience'] }
        : undefined,
    corsOrigin: corsOrigin && corsOrigin.length > 0 ? (corsOrigin.includes('*') ? '*' : corsOrigin) : undefined,
  }
}

/** `30d`, `12h`, `90m`, `45s` or a number of milliseconds, in ms. */
export function parseDuration(text: string, option = '--retention'): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim())
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match?.[2] ?? 'ms']!
  const ms = match ? Number(match[1]) * unit : NaN
  if (!(ms > 0)) throw new Error(`${option} must be a duration like 30d, 12h, 90m or 5s, got ${JSON.stringify(text)}`)
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
  const say = (line: string) => console.log(`changecast-server: ${line}`)
  let database: Database | undefined
  let sync: SyncHandler
  let server: NodeServer
  try {
    database = await openDatabase(config, say)
    if (config.readDatabaseUrls.length > 0) {
      say(`reading from ${config.readDatabaseUrls.length} replica(s) as well`)
    }
    sync = createSyncHandler({
      database,
      readDatabase: config.readDatabaseUrls.map((url) => openPostgres(url)),
      maxReplicaLag: config.maxReplicaLag,
      pages: config.pages,
      authenticate,
      basePath: config.base,
      corsOrigin: config.corsOrigin,
      scopeOf: config.scopeField ? scopeByField(config.scopeField) : undefined,
      retention: config.retention,
      limits: config.limits,
    })
    await sync.ready
    server = await serve(sync, { port: config.port, host: config.host })
  } catch (error) {
    // One line, no stack: what failed and what to do. 2: the data directory cannot be used.
    console.error(`changecast-server: ${(error as Error)?.message ?? String(error)}`)
    await database?.close().catch(() => undefined)
    process.exit(error instanceof DataDirectoryError ? 2 : 1)
  }
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
  // Only now: whoever reads this line may stop the server at once.
  const where = config.databaseUrl ? 'PostgreSQL' : `PGlite in ${config.data}`
  say(`listening on ${server.url}${config.base || '/'} (${where})`)
}

/**
 * Opens the database the command line names, saying what it does first (a new PGlite
 * directory takes seconds to create; one left by a crash is recovered). Refuses a PGlite
 * directory that holds another application's database.
 */
async function openDatabase(
  config: ReturnType<typeof parseCommandLine>,
  say: (line: string) => void,
): Promise<Database> {
  if (config.databaseUrl) {
    say(`connecting to PostgreSQL at ${new URL(config.databaseUrl).host} …`)
    return openPostgres(config.databaseUrl)
  }
  const dir = config.data
  const state = inspectDataDirectory(dir)
  say(
    state === 'new'
      ? `creating a PGlite database in ${dir} …`
      : state === 'unclean'
        ? `opening PGlite in ${dir}: recovering after an unclean stop …`
        : `opening PGlite in ${dir} …`,
  )
  const database = await openPGlite(dir)
  const [found] = await database.query<{ ours: boolean; tables: number }>(
    `select to_regclass('public.changecast_meta') is not null as ours,
       (select count(*)::int from pg_tables where schemaname not in ('pg_catalog', 'information_schema')) as tables`,
  )
  if (!found!.ours && found!.tables > 0) {
    await database.close()
    throw new DataDirectoryError(
      `${dir} holds another application's database (${found!.tables} ${found!.tables === 1 ? 'table' : 'tables'}, none of Changecast's): give a new directory`,
    )
  }
  return database
}

// Run when executed, not when imported (tests import parseCommandLine).
if (process.argv[1] && new URL(import.meta.url).pathname === (await import('node:fs')).realpathSync(process.argv[1])) {
  await main()
}
