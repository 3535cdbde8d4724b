// Starts a sync server on each backend the suites run against.
import pg from 'pg'
import { inject } from 'vitest'
import { createSyncServer } from '@changecast/testing'
import type { WireChange } from '@changecast/core/protocol'
import {
  createSyncHandler,
  insecureNoAuth,
  openPGlite,
  openPostgres,
  type Authenticate,
  type Database,
  type SyncHandlerOptions,
} from '@changecast/server'
import { serve } from '@changecast/server/node'

export type Backend = 'memory' | 'pglite' | 'postgres'
export const backends: Backend[] = ['memory', 'pglite', 'postgres']

export interface TestServer {
  /** Answers one request, without a socket. */
  handle(request: Request): Promise<Response>
  /** Serves over real HTTP; returns the base URL. */
  listen(): Promise<string>
  /** Another user writes (a backend write). */
  edit(changes: Array<Omit<WireChange, 'key'> & { key: unknown }>): Promise<void>
  close(): Promise<void>
}

let databases = 0

/** A fresh PostgreSQL database on the throwaway server; its URL and a function that drops it. */
export async function freshPostgres(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = inject('databaseUrl')
  if (!base) throw new Error(`No PostgreSQL for this suite: ${inject('databaseProblem')}`)
  const name = `changecast_${process.pid}_${Date.now()}_${++databases}`
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  const url = new URL(base)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      const again = new pg.Client({ connectionString: base })
      await again.connect()
      await again.query(`drop database if exists ${name} with (force)`)
      await again.end()
    },
  }
}

/**
 * A new, empty database of a real backend (in-memory PGlite, or a fresh database on the
 * throwaway PostgreSQL), and the function that closes it (and drops the PostgreSQL one).
 */
export async function realDatabase(
  backend: 'pglite' | 'postgres',
): Promise<{ database: Database; close(): Promise<void> }> {
  const postgres = backend === 'postgres' ? await freshPostgres() : undefined
  const database = postgres ? await openPostgres(postgres.url) : await openPGlite()
  return {
    database,
    async close() {
      await database.close()
      await postgres?.drop()
    },
  }
}

/** Rules every backend gets in the suites: a title 'refused' is refused. */
const refuse = (change: { value?: unknown }) =>
  (change.value as { title?: string } | undefined)?.title === 'refused' ? 'titles may not be refused' : undefined

export async function startServer(
  backend: Backend,
  options: { authenticate?: Authenticate } & Partial<Omit<SyncHandlerOptions, 'database' | 'authenticate'>> = {},
): Promise<TestServer> {
  const closers: Array<() => Promise<void>> = []
  const listenWith = (handle: (request: Request) => Promise<Response>) => async () => {
    const server = await serve(handle, { port: 0 })
    closers.push(() => server.close())
    return server.url
  }
  if (backend === 'memory') {
    const server = createSyncServer({ reject: refuse, heartbeat: options.heartbeat })
    return {
      handle: (request) => server.handle(request),
      listen: listenWith((request) => server.handle(request)),
      edit: (changes) => Promise.resolve(void server.edit(changes)),
      close: async () => {
        server.close()
        for (const close of closers.splice(0)) await close()
      },
    }
  }
  const { database, close } = await realDatabase(backend)
  const handler = createSyncHandler({
    database,
    authenticate: options.authenticate ?? insecureNoAuth,
    authorize: options.authorize ?? (({ change }) => refuse(change)),
    pollInterval: 200,
    ...options,
  })
  await handler.ready
  return {
    handle: handler,
    listen: listenWith(handler),
    edit: async (changes) => void (await handler.write(changes, { origin: 'another-user' })),
    async close() {
      for (const close of closers.splice(0)) await close()
      await handler.close()
      await close()
    },
  }
}
