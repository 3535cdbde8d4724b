import { ChangecastError } from '../errors.js'
import { LOG_TABLE, toLoggedChange, type LogRow } from '../log/changelog.js'
import type { ChangeEvent } from '../types.js'
import { collect, type Stage } from './stage.js'

/**
 * Writes a transaction's changelog row inside that same transaction, once, after its last
 * write: the row commits exactly when the data commits.
 *
 * IndexedDB has no "about to commit" event, so the row is written at the last moment the
 * transaction is still usable: when Dexie calls `commit()` (patched below; Dexie does for
 * the transactions it opens around a single operation), or — where no `commit()` may come
 * (see `Stage.commits`) — in the success callback of a cheap read issued once no request of
 * the transaction is running: by then the application's continuations have run, and if
 * they made no new write, there will be none. A row that cannot be written aborts its
 * transaction: a commit without its row would never reach other tabs or the server.
 */
export class LogWriter {
  readonly #report: (error: ChangecastError) => void

  constructor(report: (error: ChangecastError) => void) {
    this.#report = report
  }

  /** Patches `trans.commit()` so an explicit commit writes the row first. */
  attach(trans: IDBTransaction, stageOf: () => Stage | undefined): void {
    if (typeof trans.commit !== 'function') return
    const commit = trans.commit.bind(trans)
    trans.commit = () => {
      const stage = stageOf()
      if (stage && !this.flush(trans, stage)) return
      // A row that must be written again once its first write answers (see #write) is
      // written before the commit.
      const adding = stage?.log.adding
      if (adding && stage.size !== stage.log.written) adding.addEventListener('success', () => commit())
      else commit()
    }
  }

  /** Issues a probe: once it answers, if still no request runs, the row is written. */
  idle(trans: IDBTransaction, stage: Stage): void {
    if (stage.size === stage.log.written || stage.log.failed) return
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

  /**
   * Writes the row of a transaction's first write before that write has answered, with the
   * events it will have if it succeeds (`assumed`). If the write then fails, the row is put
   * right (or deleted) as soon as its own request answers.
   */
  early(trans: IDBTransaction, stage: Stage, assumed: () => ChangeEvent[] | undefined): void {
    if (stage.pending !== 1 || stage.log.flushes > 0) return
    const events = assumed()
    if (!events || events.length === 0) return
    stage.log.assumed = events
    const request = this.#write(trans, stage, events)
    request?.addEventListener('success', () => {
      if (stage.pending === 0 && stage.size !== stage.log.written) this.flush(trans, stage)
    })
  }

  /** Writes (or rewrites) the row with every event staged so far. False when it could not, and the transaction was aborted. */
  flush(trans: IDBTransaction, stage: Stage): boolean {
    if (stage.size === stage.log.written) return true
    return this.#write(trans, stage, collect(stage)) !== undefined
  }

  #write(trans: IDBTransaction, stage: Stage, events: ChangeEvent[]): IDBRequest | undefined {
    if (stage.log.failed) return undefined
    const adding = stage.log.adding
    if (adding) {
      // The row's add has not answered, so its rev (the key to rewrite) is not known yet:
      // write again once it is. (A write that failed may be answered before the row written
      // early for it, and Dexie calls `commit()` even then.)
      adding.addEventListener('success', () => this.flush(trans, stage))
      return adding
    }
    const at = Date.now()
    const row: Omit<LogRow, 'rev'> & { rev?: number } = {
      tx: stage.tx,
      origin: stage.origin,
      source: stage.source,
      at,
      changes: stage.unlogged ? [] : events.map(toLoggedChange),
    }
    if (stage.unlogged) row.unlogged = events.length
    if (stage.log.rev !== undefined) row.rev = stage.log.rev
    let request: IDBRequest
    try {
      const store = trans.objectStore(LOG_TABLE)
      // A row whose events all failed in the end goes away again.
      request = row.rev === undefined ? store.add(row) : events.length === 0 ? store.delete(row.rev) : store.put(row)
    } catch (error) {
      this.#fail(trans, stage, error)
      return undefined
    }
    stage.log.written = events.length
    stage.log.at = at
    stage.log.flushes++
    if (events.length === 0) {
      ;(stage.log.dropped ??= []).push(row.rev!)
      stage.log.rev = undefined
    } else {
      if (row.rev === undefined) stage.log.adding = request
      request.addEventListener('success', () => {
        stage.log.rev = request.result as number
        stage.log.adding = undefined
      })
    }
    return request
  }

  #fail(trans: IDBTransaction, stage: Stage, cause: unknown): void {
    // Written off: no later attempt (commit(), a probe) writes or reports it again.
    stage.log.failed = true
    try {
      trans.abort()
    } catch {
      // Already finished.
    }
    this.#report(
      new ChangecastError(
        'log-failed',
        `The changelog row of transaction ${stage.tx} could not be written (${cause instanceof Error ? cause.message : String(cause)}), so the transaction was aborted: nothing of it was stored.`,
        { cause },
      ),
    )
  }
}
