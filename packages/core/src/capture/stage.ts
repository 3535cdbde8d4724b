import type { ChangeEvent } from '../types.js'
import type { ReadCache } from './kept-read.js'

/**
 * What one native readwrite transaction has written so far. Its events are handed on
 * only when the transaction fires `complete`; on `abort` the stage is dropped.
 */
export interface Stage extends ReadCache {
  /** Transaction id shared by every event of this commit. */
  tx: string
  /** `remote` while applying a batch from the server; such commits are never pushed back. */
  source: 'local' | 'remote'
  /** Who made the change: this context, or the remote client a server batch came from. */
  origin: string
  /** Entities (table and encoded key) whose deletes only remove them from this client's view. */
  removed?: ReadonlySet<string>
  /** The changelog row records how many changes the transaction made, not the changes (see `LogRow.unlogged`). */
  unlogged?: boolean
  /** Events per write request, in request order; `undefined` while a request is running. */
  readonly parts: Array<ChangeEvent[] | undefined>
  /** Write requests made but not answered yet. */
  pending: number
  /** Read requests of the application made but not answered yet. */
  reads: number
  /** The application has read in this transaction (an operation in several steps, like `modify`). */
  read?: boolean
  /** Number of events staged so far. */
  size: number
  /**
   * Dexie will call `commit()` on this transaction (it opened it around one operation), so
   * the changelog row can wait for that. False for explicit transactions (IndexedDB commits
   * them by itself) and transactions not created through the middleware (upgrades): there
   * a probe request writes the row once all is quiet.
   */
  commits?: boolean
  /** A write failed: the operation may reject, and then nobody calls `commit()`. */
  failed?: boolean
  /** Changelog state: events already written to this transaction's row, and its rev. */
  log: {
    /** Events in the row written so far (-1: the row says something else than the events: rewrite it). */
    written: number
    rev?: number | undefined
    at?: number | undefined
    flushes: number
    /** Revs of rows this transaction wrote and deleted again (its writes failed): gaps in the changelog once it commits. */
    dropped?: number[]
    /** The row's add, until it answers with the row's rev. */
    adding?: IDBRequest
    /** The events of a row written before its write answered (see `LogWriter.early`). */
    assumed?: ChangeEvent[]
    /** The row could not be written and the transaction was aborted: nothing more to do. */
    failed?: boolean
  }
}

/** Called with the events of a committed transaction, in write order (none when all it did was drop a changelog row). */
export type CommitHandler = (stage: Stage, events: ChangeEvent[]) => void

/**
 * Keeps one {@link Stage} per native transaction (`WeakMap<IDBTransaction, Stage>`),
 * flushed on `complete`, dropped on `abort`.
 */
export class Staging {
  readonly #stages = new WeakMap<object, Stage>()
  #counter = 0

  readonly #origin: string
  readonly #onCommit: CommitHandler

  constructor(origin: string, onCommit: CommitHandler) {
    this.#origin = origin
    this.#onCommit = onCommit
  }

  /** The stage of `trans`, or `undefined` when it has none. */
  get(trans: object): Stage | undefined {
    return this.#stages.get(trans)
  }

  /**
   * The stage of `trans`, created on first use. Register as early as possible (when the
   * transaction is created): listeners run in registration order, and ours must run
   * before Dexie resolves the transaction's promise, so that `await db.todos.put(x)`
   * returns after the event was delivered.
   */
  watch(trans: object): Stage {
    let stage = this.#stages.get(trans)
    if (stage) return stage
    stage = {
      tx: `${this.#origin}.${++this.#counter}`,
      source: 'local',
      origin: this.#origin,
      parts: [],
      pending: 0,
      reads: 0,
      writes: 0,
      size: 0,
      log: { written: 0, flushes: 0 },
    }
    this.#stages.set(trans, stage)
    const target = trans as EventTarget
    const created = stage
    const onComplete = (): void => {
      target.removeEventListener('abort', onAbort)
      this.#stages.delete(trans)
      const events = collect(created)
      if (events.length > 0 || created.log.dropped) this.#onCommit(created, events)
    }
    const onAbort = (): void => {
      target.removeEventListener('complete', onComplete)
      this.#stages.delete(trans)
    }
    target.addEventListener('complete', onComplete, { once: true })
    target.addEventListener('abort', onAbort, { once: true })
    return stage
  }
}

/** Every event staged so far, in write order. */
export function collect(stage: Stage): ChangeEvent[] {
  const events: ChangeEvent[] = []
  for (const part of stage.parts) if (part) for (const event of part) events.push(event)
  return events
}
