import pg from 'pg'
import type { Database, Queryable } from './port.js'

/** How long to wait before connecting the listener again, at most (ms). */
const MAX_RECONNECT_DELAY = 5000

/**
 * PostgreSQL through a `pg` pool. `LISTEN` holds one session connection of its own, which
 * reconnects by itself (with backoff) when it drops; so put a session pooler, not a
 * transaction pooler, between the server and PostgreSQL.
 */
export async function openPostgres(connectionString: string, { max = 10 }: { max?: number } = {}): Promise<Database> {
  const pool = new pg.Pool({ connectionString, max })
  // An idle client that loses its connection is discarded by the pool; log, do not crash.
  pool.on('error', (error) => console.error('[changecast-server] PostgreSQL connection error:', error.message))
  await pool.query('select 1')
  const queryable = (target: Pick<pg.Pool | pg.PoolClient, 'query'>): Queryable => ({
    query: async <R>(sql: string, params?: readonly unknown[]) =>
      (await target.query(sql, params as unknown[] | undefined)).rows as R[],
  })
  const listeners = new Set<() => Promise<void>>()
  return {
    kind: 'postgres',
    ...queryable(pool),
    exec: async (sql) => {
      await pool.query(sql)
    },
    async transaction(body) {
      const client = await pool.connect()
      try {
        await client.query('begin')
        const result = await body(queryable(client))
        await client.query('commit')
        return result
      } catch (error) {
        await client.query('rollback').catch(() => undefined)
        throw error
      } finally {
        client.release()
      }
    },
    async listen(channel, onNotify) {
      const stop = await listenForever(connectionString, channel, onNotify)
      listeners.add(stop)
      return async () => {
        listeners.delete(stop)
        await stop()
      }
    },
    async close() {
      await Promise.all([...listeners].map((stop) => stop()))
      await pool.end()
    },
  }
}

/** A dedicated LISTEN connection that reconnects until stopped. */
async function listenForever(
  connectionString: string,
  channel: string,
  onNotify: () => void,
): Promise<() => Promise<void>> {
  let stopped = false
  let client: pg.Client | undefined
  let attempt = 0
  let retry: ReturnType<typeof setTimeout> | undefined
  const connect = async (): Promise<void> => {
    const next = new pg.Client({ connectionString })
    next.on('notification', (message) => message.channel === channel && onNotify())
    next.on('error', () => undefined)
    next.on('end', () => {
      if (stopped || client !== next) return
      client = undefined
      schedule()
    })
    await next.connect()
    await next.query(`listen "${channel.replaceAll('"', '""')}"`)
    client = next
    attempt = 0
    // Whatever was notified while not listening is read now.
    onNotify()
  }
  const schedule = (): void => {
    if (stopped) return
    const delay = Math.min(MAX_RECONNECT_DELAY, 100 * 2 ** attempt++)
    retry = setTimeout(() => {
      connect().catch((error: Error) => {
        console.error(`[changecast-server] LISTEN connection failed (${error.message}); retrying.`)
        schedule()
      })
    }, delay)
  }
  await connect()
  return async () => {
    stopped = true
    clearTimeout(retry)
    await client?.end().catch(() => undefined)
  }
}
