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
 * message heard from an origin starts its count. Updates `seen`.
 */
export function classifySeq(seen: Map<string, number>, origin: string, seq: number): Verdict {
  const last = seen.get(origin)
  if (last !== undefined && seq <= last) return 'duplicate'
  seen.set(origin, seq)
  return last === undefined || seq === last + 1 ? 'deliver' : 'gap'
}

/** What a changelog read found: the batches with `after < rev < before`, and the oldest rev still kept. */
export interface RangeRead {
  batches: ChangeBatch[]
  /** Oldest rev in the changelog (0 when empty). Revs below it were compacted away. */
  oldest: number
}

/** Reads committed batches with `after < rev < before` (or all after `after`) from the changelog. */
export type ReadRange = (after: number, before: number | undefined) => Promise<RangeRead>

/** Called when batches after rev `after` were missed and are no longer in the changelog. */
export type OnLost = (after: number, before: number | undefined) => void

/** True when revs after `after` were compacted away before this context could read them. */
export function wasCompacted(after: number, oldest: number): boolean {
  return oldest > after + 1
}

/**
 * Delivers batches exactly once and in rev order, whatever order they arrive in (local
 * commits, tab messages, replays). A batch that comes after a gap waits while the missing
 * revs are read from the changelog. Nothing is delivered before `start()` gives the
 * baseline (the newest rev when this context opened).
 */
export class Sequencer {
  private last: number | undefined
  /** Batches not yet delivered, and catch-up requests (rev `Infinity`). */
  private readonly waiting: Array<ChangeBatch | CatchUp> = []
  private busy = false
  private closed = false

  constructor(
    private readonly deliver: (batch: ChangeBatch) => void,
    private readonly readRange: ReadRange,
    private readonly onLost: OnLost,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** The last delivered rev (`undefined` before the baseline is known). */
  get rev(): number | undefined {
    return this.last
  }

  /** Sets the baseline: revs up to it count as already delivered. */
  start(baseline: number): void {
    this.last = Math.max(baseline, this.last ?? 0)
    this.drain()
  }

  /**
   * Delivers a batch that carries a rev: at once when it is the next one, after the
   * missing ones when there is a gap, never when it was delivered already.
   */
  offer(batch: ChangeBatch): void {
    if (this.closed) return
    if (this.last === undefined && batch.source === 'local') {
      // A local commit before the baseline is known (a schema upgrade) sets the baseline.
      this.last = batch.rev! - 1
    }
    this.waiting.push(batch)
    this.drain()
  }

  /** Reads and delivers everything committed after the last delivered rev. */
  catchUp(): Promise<void> {
    if (this.closed) return Promise.resolve()
    return new Promise((resolve) => {
      this.waiting.push({ rev: Infinity, resolve })
      this.drain()
    })
  }

  close(): void {
    this.closed = true
    for (const item of this.waiting.splice(0)) if ('resolve' in item) item.resolve()
  }

  private drain(): void {
    while (!this.busy && !this.closed && this.last !== undefined && this.waiting.length > 0) {
      this.waiting.sort((a, b) => a.rev! - b.rev!)
      const next = this.waiting[0]!
      const last: number = this.last
      const verdict = 'resolve' in next ? 'gap' : classifyRev(last, next.rev!)
      if (verdict === 'duplicate') {
        this.waiting.shift()
        continue
      }
      if (verdict === 'deliver') {
        this.waiting.shift()
        this.last = next.rev!
        this.deliver(next as ChangeBatch)
        continue
      }
      this.busy = true
      const before = next.rev === Infinity ? undefined : next.rev
      this.readRange(last, before)
        .then(
          ({ batches, oldest }) => this.replay(last, before, batches, oldest),
          (error: unknown) => {
            this.onError(error)
            if (before !== undefined) this.skipTo(before - 1)
          },
        )
        .finally(() => {
          this.busy = false
          if ('resolve' in next) {
            this.waiting.splice(this.waiting.indexOf(next), 1)
            next.resolve()
          }
          this.drain()
        })
      return
    }
  }

  private replay(after: number, before: number | undefined, batches: ChangeBatch[], oldest: number): void {
    if (this.closed) return
    if (wasCompacted(after, oldest)) this.onLost(after, before)
    for (const batch of batches) {
      if (batch.rev! <= this.last!) continue
      this.last = batch.rev!
      this.deliver(batch)
    }
    // Revs below `before` that the changelog does not hold were never committed (aborted).
    if (before !== undefined) this.skipTo(before - 1)
  }

  private skipTo(rev: number): void {
    if (this.last! < rev) this.last = rev
  }
}

interface CatchUp {
  rev: number
  resolve: () => void
}
