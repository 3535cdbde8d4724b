import type { ChangeBatch } from '../types.js'

/** What to do with a batch, given the last rev this context delivered. */
export type Verdict = 'deliver' | 'duplicate' | 'gap'

/**
 * Decides by changelog revision: the next rev is delivered, an old one is a duplicate,
 * a later one means batches in between were missed.
 */
export function classifyRev(last: number, rev: number): Verdict {
  if (rev <= last) return 'duplicate'
  return rev === last + 1 ? 'deliver' : 'gap'
}

/**
 * Decides by per-origin message sequence (used when there is no changelog). The first
 * message heard from an origin starts its count. BroadcastChannel neither duplicates nor
 * reorders one sender's messages, so anything but the next number — a jump ahead (lost
 * messages) or back (a forged or restarted sender) — is a gap: delivered, with a resync,
 * and the count follows the sender, so a bogus number can never silence a real sender.
 * Updates `seen`.
 */
export function classifySeq(seen: Map<string, number>, origin: string, seq: number): Verdict {
  const last = seen.get(origin)
  seen.set(origin, seq)
  return last === undefined || seq === last + 1 ? 'deliver' : 'gap'
}

/** What a changelog read found: the batches after a rev, and the oldest rev still kept. */
export interface RangeRead {
  batches: ChangeBatch[]
  /** Oldest rev in the changelog (0 when empty). Revs below it were compacted away. */
  oldest: number
  /** Rows read that record how many changes they made without holding them (see `LogRow.unlogged`): rev → count. */
  unlogged?: ReadonlyMap<number, number>
}

/** Reads every committed batch with `rev > after` from the changelog. */
export type ReadRange = (after: number) => Promise<RangeRead>

/**
 * Called when batches after rev `after` were missed and the changelog cannot replay them:
 * compacted away, or recorded without their changes (a server snapshot's pages).
 */
export type OnLost = (after: number, reason: 'log-compacted' | 'server-snapshot') => void

/** True when revs after `after` were compacted away before this context could read them. */
export function wasCompacted(after: number, oldest: number): boolean {
  return oldest > after + 1
}

interface Waiting {
  batch: ChangeBatch | undefined
  rev: number
  /** A rev with no row: a commit of this context deleted it again. */
  gap?: true
  /** Changelog reads started before this arrived (to tell "not in the log" from "committed since"). */
  reads: number
  resolve?: () => void
}

/**
 * Delivers batches exactly once and in rev order, whatever order they arrive in (local
 * commits, tab messages, replays). The changelog is the truth: a batch that is not the
 * next rev is never taken at its word; the missing revs are read from the changelog and
 * delivered from there, and a message whose rev the changelog does not hold is dropped.
 * Nothing is delivered before `start()` gives the baseline.
 */
export class Sequencer {
  #last: number | undefined
  readonly #waiting: Waiting[] = []
  #busy = false
  #closed = false
  #reads = 0

  readonly #deliver: (batch: ChangeBatch) => void
  readonly #readRange: ReadRange
  readonly #onLost: OnLost
  readonly #onError: (error: unknown) => void

  constructor(
    deliver: (batch: ChangeBatch) => void,
    readRange: ReadRange,
    onLost: OnLost,
    onError: (error: unknown) => void,
  ) {
    this.#deliver = deliver
    this.#readRange = readRange
    this.#onLost = onLost
    this.#onError = onError
  }

  /** The last delivered rev (`undefined` before the baseline is known). */
  get rev(): number | undefined {
    return this.#last
  }

  /** Sets the baseline: revs up to it count as delivered. */
  start(baseline: number): void {
    this.#last = Math.max(baseline, this.#last ?? 0)
    this.#drain()
  }

  /** Starts over from `baseline` (the changelog was recreated or went back): what waits is dropped. */
  reset(baseline: number): void {
    this.#last = baseline
    for (const item of this.#waiting.splice(0)) item.resolve?.()
  }

  /** Delivers a batch that carries a rev: at once when it is the next one, else through the changelog. */
  offer(batch: ChangeBatch): void {
    if (this.#closed) return
    if (this.#last === undefined && batch.source === 'local') {
      // A local commit before the baseline is known (a schema upgrade) sets the baseline.
      this.#last = batch.rev! - 1
    }
    this.#waiting.push({ batch, rev: batch.rev!, reads: this.#reads })
    this.#drain()
  }

  /**
   * Rev `rev` holds no row: a committed transaction of this context wrote it and deleted it
   * again (its writes failed). Known from the commit itself, not from a message, so the
   * next rev is delivered without reading the changelog for the missing one.
   */
  skip(rev: number): void {
    if (this.#closed) return
    this.#waiting.push({ batch: undefined, rev, gap: true, reads: this.#reads })
    this.#drain()
  }

  /** Reads and delivers everything committed after the last delivered rev. */
  catchUp(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    return new Promise((resolve) => {
      this.#waiting.push({ batch: undefined, rev: Infinity, reads: this.#reads, resolve })
      this.#drain()
    })
  }

  close(): void {
    this.#closed = true
    for (const item of this.#waiting.splice(0)) item.resolve?.()
  }

  #drain(): void {
    while (!this.#busy && !this.#closed && this.#last !== undefined && this.#waiting.length > 0) {
      this.#waiting.sort((a, b) => a.rev - b.rev)
      const next = this.#waiting[0]!
      const verdict = next.batch || next.gap ? classifyRev(this.#last, next.rev) : 'gap'
      if (verdict === 'duplicate') {
        this.#waiting.shift()
        continue
      }
      if (verdict === 'deliver') {
        this.#waiting.shift()
        this.#last = next.rev
        if (next.batch) this.#deliver(next.batch)
        continue
      }
      this.#busy = true
      const after = this.#last
      const started = ++this.#reads
      this.#readRange(after)
        .then(
          (read) => this.#replay(after, read, started),
          (error: unknown) => {
            this.#onError(error)
            this.#dropStale(started)
          },
        )
        .finally(() => {
          this.#busy = false
          this.#drain()
        })
      return
    }
  }

  #replay(after: number, { batches, oldest, unlogged }: RangeRead, read: number): void {
    if (this.#closed) return
    let lost = wasCompacted(after, oldest)
    if (lost) this.#onLost(after, 'log-compacted')
    for (let batch of batches) {
      if (batch.rev! <= this.#last!) continue
      const count = unlogged?.get(batch.rev!)
      if (count !== undefined) {
        // A row without its changes: the batch as heard (this context's own commit, or its
        // message, waiting here) when the row confirms it, else the context must reload.
        const heard = this.#waiting.find(
          (item) => item.rev === batch.rev && item.batch?.tx === batch.tx && item.batch.events.length === count,
        )?.batch
        if (heard) batch = heard
        else if (!lost) {
          lost = true
          this.#onLost(after, 'server-snapshot')
        }
      }
      this.#last = batch.rev!
      this.#deliver(batch)
    }
    this.#dropStale(read)
  }

  /**
   * Whatever waited before changelog read number `read` and is still ahead is not in the
   * changelog: not a real commit (or already compacted). It is dropped, never skipped to.
   */
  #dropStale(read: number): void {
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const item = this.#waiting[i]!
      if (item.reads < read && (!item.batch || item.rev > this.#last!)) {
        this.#waiting.splice(i, 1)
        item.resolve?.()
      }
    }
  }
}
