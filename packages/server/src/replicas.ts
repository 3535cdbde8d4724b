import type { Database, Queryable } from './db/port.js'
import type { Names } from './names.js'
import { readMeta } from './store/model.js'

/** The log's epoch, head and horizon as one database holds them. */
export type Meta = Awaited<ReturnType<typeof readMeta>>

/** Options of the read replicas (see `readDatabase`). */
export interface ReplicaOptions {
  /** Milliseconds a replica may lag behind the primary and still serve reads. @default 5000 */
  maxLag?: number
  /** Milliseconds between two checks of each replica's position. @default 500 */
  probeInterval?: number
}

interface Replica {
  db: Database
  /** The newest revision it held when last asked. */
  head: number
  /** Answered the last check (or the last read). */
  up: boolean
  /** Milliseconds behind the primary at the last check. */
  lag: number
}

/**
 * PostgreSQL streaming replicas that serve reads: pulls, snapshot pages and the catch-up of
 * streams. A replica is used only for what it holds — a read that must reach revision `r`
 * goes to one whose head is at least `r` — so a client never skips a batch nor goes back,
 * whichever replica each of its requests reaches. A replica more than `maxLag` behind, or
 * down, is skipped (the primary serves) until a check finds it back.
 *
 * Lag is measured by revisions: this instance notes when it first read each head of the
 * primary (its fan-out reads every commit); a replica at head `h` lags by the time since the
 * primary first went past `h`.
 */
export class Replicas {
  readonly #primary: Database
  readonly #t: Names
  readonly #replicas: Replica[]
  readonly #maxLag: number
  readonly #probeInterval: number
  /** Heads of the primary as this instance read them, and when it first did (oldest first). */
  readonly #seen: Array<{ head: number; at: number }> = []
  #next = 0
  #timer: ReturnType<typeof setInterval> | undefined

  constructor(primary: Database, replicas: readonly Database[], t: Names, options: ReplicaOptions = {}) {
    this.#primary = primary
    this.#t = t
    this.#replicas = replicas.map((db) => ({ db, head: -1, up: false, lag: Infinity }))
    this.#maxLag = options.maxLag ?? 5000
    this.#probeInterval = options.probeInterval ?? 500
    if (!(this.#maxLag >= 0)) throw new TypeError('maxLag must be a number of ms ≥ 0')
    if (!(this.#probeInterval > 0)) throw new TypeError('probeInterval must be a positive number of ms')
  }

  /** Checks every replica now, then every `probeInterval`. */
  async start(): Promise<void> {
    await this.probe()
    this.#timer = setInterval(() => void this.probe(), this.#probeInterval)
    ;(this.#timer as { unref?: () => void }).unref?.()
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  /** The primary reached `head` (as this instance read it). */
  seen(head: number): void {
    const last = this.#seen.at(-1)
    if (last && head <= last.head) {
      // The log went back (a restore): start over.
      if (head < last.head) this.#seen.length = 0
      else return
    }
    this.#seen.push({ head, at: Date.now() })
    // What is older than the bound is of no use (a replica that far behind is skipped anyway).
    const old = Date.now() - this.#maxLag - 60_000
    while (this.#seen.length > 2 && this.#seen[1]!.at < old) this.#seen.shift()
  }

  /** Milliseconds a database at `head` lags behind the primary. */
  lagOf(head: number): number {
    // The first head the primary reached past `head`.
    const passed = this.#seen.find((seen) => seen.head > head)
    return passed ? Date.now() - passed.at : 0
  }

  /** Each replica's state, as the last check found it. */
  get state(): Array<{ up: boolean; head: number; lag: number }> {
    return this.#replicas.map(({ up, head, lag }) => ({ up, head, lag }))
  }

  /** Asks every replica its head. */
  async probe(): Promise<void> {
    await Promise.all(
      this.#replicas.map(async (replica) => {
        try {
          replica.head = (await readMeta(replica.db, this.#t)).head
          replica.up = true
          replica.lag = this.lagOf(replica.head)
        } catch {
          replica.up = false
        }
      }),
    )
  }

  /** The next usable replica (up, within the lag bound, at `after` at least when last checked), in turns. */
  #pick(after: number): Replica | undefined {
    for (let i = 0; i < this.#replicas.length; i++) {
      const replica = this.#replicas[(this.#next + i) % this.#replicas.length]!
      if (replica.up && replica.lag <= this.#maxLag && replica.head >= after) {
        this.#next = (this.#next + i + 1) % this.#replicas.length
        return replica
      }
    }
    return undefined
  }

  /**
   * Runs a read on a replica whose meta passes `usable` (asked in the same request, so it is
   * what the replica holds now), else on the primary. `primary`: the primary's meta when
   * the caller read it already. A replica that fails is skipped until the next check finds
   * it back, and the read runs on the primary.
   */
  async read<T>(
    after: number,
    usable: (meta: Meta) => boolean,
    body: (db: Queryable, meta: Meta) => Promise<T>,
    primary?: Meta,
  ): Promise<T> {
    const replica = this.#pick(after)
    if (replica) {
      let meta: Meta | undefined
      try {
        meta = await readMeta(replica.db, this.#t)
        replica.head = meta.head
      } catch (error) {
        this.#down(replica, error)
      }
      if (meta && usable(meta)) {
        try {
          return await body(replica.db, meta)
        } catch (error) {
          this.#down(replica, error)
        }
      }
    }
    return body(this.#primary, primary ?? (await readMeta(this.#primary, this.#t)))
  }

  /**
   * Where a stream's catch-up reads after `after`, up to `upTo`: a replica of the log of
   * `epoch` that holds something past `after` (what it holds), else the primary.
   */
  reader(after: number, upTo: number, epoch: string): Promise<{ db: Queryable; head: number }> {
    return this.read(
      after + 1,
      (meta) => meta.epoch === epoch && meta.head > after,
      (db, meta) => Promise.resolve({ db, head: db === this.#primary ? upTo : meta.head }),
      { epoch: '', head: upTo, horizon: 0 },
    )
  }

  #down(replica: Replica, error: unknown): void {
    if (replica.up) {
      console.error(
        `[changecast-server] A read replica failed (${(error as Error)?.message}); reading from the primary.`,
      )
    }
    replica.up = false
  }

  async close(): Promise<void> {
    this.stop()
    await Promise.all(this.#replicas.map((replica) => replica.db.close().catch(() => undefined)))
  }
}
