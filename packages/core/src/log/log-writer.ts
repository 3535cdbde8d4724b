import { collect, type Stage } from '../capture/stage.js'
import { LOG_TABLE, toLoggedChange, type LogRow } from './changelog.js'

/**
 * Writes a transaction's changelog row inside that same transaction, once, after its
 * last write: the row commits exactly when the data commits.
 *
 * IndexedDB has no "about to commit" event, so the row is written at the last moment
 * the transaction is still usable: either when Dexie calls `commit()` (patched below),
 * or — for transactions that end by auto-commit — in the success callback of a cheap
 * read issued after the last write answered: by then the application's continuations
 * have run, and if they made no new write, there will be none.
 */
export class LogWriter {
  /** Patches `trans.commit()` so an explicit commit writes the row first. */
  attach(trans: IDBTransaction, stageOf: () => Stage | undefined): void {
    if (typeof trans.commit !== 'function') return
    const commit = trans.commit.bind(trans)
    trans.commit = () => {
      const stage = stageOf()
      if (stage) this.flush(trans, stage)
      commit()
    }
  }

  /** Called when a write answered and no other write is running. */
  settled(trans: IDBTransaction, stage: Stage): void {
    if (stage.size === stage.log.written) return
    const flushes = stage.log.flushes
    let probe: IDBRequest
    try {
      probe = trans.objectStore(LOG_TABLE).get(0)
    } catch {
      return // already committing: the patched commit() wrote the row
    }
    probe.onsuccess = () => {
      if (stage.pending === 0 && stage.reads === 0 && stage.log.flushes === flushes) this.flush(trans, stage)
    }
  }

  /** Writes (or rewrites) the row with every event staged so far. */
  flush(trans: IDBTransaction, stage: Stage): void {
    if (stage.size === stage.log.written) return
    const events = collect(stage)
    const store = trans.objectStore(LOG_TABLE)
    const at = Date.now()
    const row: Omit<LogRow, 'rev'> & { rev?: number } = {
      tx: stage.tx,
      origin: stage.origin,
      source: stage.source,
      at,
      changes: events.map(toLoggedChange),
    }
    stage.log.written = events.length
    stage.log.at = at
    stage.log.flushes++
    if (stage.log.rev !== undefined) {
      row.rev = stage.log.rev
      store.put(row)
      return
    }
    const request = store.add(row)
    request.onsuccess = () => {
      stage.log.rev = request.result as number
    }
  }
}
