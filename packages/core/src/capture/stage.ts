import type { ChangeEvent } from '../types.js'

type Part = ChangeEvent[] | PromiseLike<ChangeEvent[]>

/**
 * What one native readwrite transaction has written so far. Its events are handed on
 * only when the transaction fires `complete`; on `abort` the stage is dropped.
 */
export interface Stage {
  /** Transaction id shared by every event of this commit. */
  readonly tx: string
  /** Events per write request, in the order the requests were made. */
  readonly parts: Part[]
  /**
   * Resolves once every write requested so far has reached IndexedDB. Set while a write
   * waits for its previous values, so that later requests of the same transaction do
   * not overtake it. `undefined` when nothing waits.
   */
  gate: PromiseLike<void> | undefined
}

/** Called with the events of a committed transaction (possibly none), in write order. */
export type CommitHandler = (tx: string, events: ChangeEvent[]) => void

/** Called when the events of a committed transaction could not be built. */
export type StageErrorHandler = (error: unknown) => void

/**
 * Keeps one {@link Stage} per native transaction (`WeakMap<IDBTransaction, Stage>`),
 * flushed on `complete`, dropped on `abort`.
 */
export class Staging {
  private readonly stages = new WeakMap<object, Stage>()
  private counter = 0

  constructor(
    private readonly origin: string,
    private readonly onCommit: CommitHandler,
    private readonly onError: StageErrorHandler,
  ) {}

  /** The stage of `trans`, or `undefined` when it has none. */
  get(trans: object): Stage | undefined {
    return this.stages.get(trans)
  }

  /**
   * The stage of `trans`, created on first use. Register as early as possible (when the
   * transaction is created): listeners run in registration order, and ours must run
   * before Dexie resolves the transaction's promise, so that `await db.todos.put(x)`
   * returns after the event was delivered.
   */
  watch(trans: object): Stage {
    let stage = this.stages.get(trans)
    if (stage) return stage
    stage = { tx: `${this.origin}.${++this.counter}`, parts: [], gate: undefined }
    this.stages.set(trans, stage)
    const target = trans as EventTarget
    const created = stage
    const onComplete = (): void => {
      target.removeEventListener('abort', onAbort)
      this.stages.delete(trans)
      this.flush(created)
    }
    const onAbort = (): void => {
      target.removeEventListener('complete', onComplete)
      this.stages.delete(trans)
    }
    target.addEventListener('complete', onComplete, { once: true })
    target.addEventListener('abort', onAbort, { once: true })
    return stage
  }

  private flush(stage: Stage): void {
    const { parts, tx } = stage
    if (parts.length === 0) return
    if (parts.every(Array.isArray)) {
      this.onCommit(tx, (parts as ChangeEvent[][]).flat())
      return
    }
    // Responses normally arrive before `complete`; this only waits for a late one.
    Promise.all(parts.map((part) => Promise.resolve(part))).then(
      (all) => this.onCommit(tx, all.flat()),
      (error: unknown) => this.onError(error),
    )
  }
}
