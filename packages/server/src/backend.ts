import { encodeWireKey, LIMITS, parsePushRequest, PROTOCOL_VERSION, wireKeyText } from '@changecast/core/protocol'
import type { Queryable } from './db/port.js'
import type { BackendChange, DriverTransaction, SyncHandler } from './options.js'
import { TooLargeError, type Server } from './routes/context.js'
import { compact, revisionBefore } from './store/compaction.js'
import { readMeta } from './store/model.js'
import { appendBackendBatch } from './store/push.js'

/** The backend's own side of a sync handler: its writes, reads and compaction. */
export function backend(
  server: Server,
  ready: Promise<void>,
  wrote: (changes: number) => void,
): Pick<SyncHandler, 'write' | 'writeWith' | 'read' | 'compact'> {
  const { t } = server
  const { retention } = server.options
  const append = async (tx: Queryable, changes: readonly BackendChange[], origin = 'backend') => {
    if (!(changes?.length > 0)) throw new TypeError('write(): give at least one change')
    const wire = changes.map((change) => ({ ...change, key: encodeWireKey(change.key) }))
    const batch = { rev: 1, tx: 'backend', at: 0, changes: wire }
    // The same checks as a push: a backend write the clients could not read would stop them.
    parsePushRequest({ v: PROTOCOL_VERSION, clientId: origin, batches: [batch] })
    if (JSON.stringify(batch).length > LIMITS.batchBytes)
      throw new TooLargeError(`the batch is over ${LIMITS.batchBytes} bytes`)
    return appendBackendBatch(tx, t, wire, origin, server.scoping)
  }
  return {
    async write(changes, { origin } = {}) {
      await ready
      const rev = await server.db.transaction((tx) => append(tx, changes, origin))
      wrote(changes.length)
      server.fanout.announce()
      return rev
    },
    async writeWith(transaction: DriverTransaction, changes, { origin } = {}) {
      await ready
      const tx: Queryable = {
        query: async <R>(sql: string, params?: readonly unknown[]) =>
          (await transaction.query(sql, params as unknown[])).rows as R[],
      }
      const rev = await append(tx, changes, origin)
      // Inside the app's transaction: delivered to every instance if, and when, it commits.
      await tx.query('select pg_notify($1, $2)', [t.channel, ''])
      wrote(changes.length)
      return rev
    },
    async read(table, key) {
      await ready
      const [row] = await server.db.query<{ value: string | null }>(
        `select value from ${t.entities} where tbl = $1 and key = $2`,
        [table, wireKeyText(encodeWireKey(key))],
      )
      return row?.value == null ? undefined : (JSON.parse(row.value) as unknown)
    },
    async compact({ olderThan = retention, upTo } = {}) {
      await ready
      if (upTo === undefined && olderThan === undefined)
        throw new TypeError('compact(): give olderThan or upTo (or the retention option)')
      const horizon = upTo ?? (await revisionBefore(server.db, t, olderThan!))
      const removed = await compact(server.db, t, horizon)
      wrote(removed)
      return { horizon: (await readMeta(server.db, t)).horizon, removed }
    },
  }
}
