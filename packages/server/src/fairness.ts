/** Bounds that keep one user from starving the others (see `limits` in `createSyncHandler`). */
export interface ServerLimits {
  /** Streams one client id may have open at once (a reconnect may overlap the old one briefly). @default 4 */
  streamsPerClient?: number
  /** Streams one principal may have open at once, over all its clients. @default 50 */
  streamsPerPrincipal?: number
  /** Pulls and snapshot pages (and stream catch-ups) of one principal read at once; more wait their turn. @default 1 */
  readsPerPrincipal?: number
  /** Pulls and snapshot pages of one principal that may wait; more are answered 429. @default 8 */
  queuedReadsPerPrincipal?: number
}

/** Over a limit of {@link ServerLimits}: answered 429 with `Retry-After` (seconds). */
export class BusyError extends Error {
  constructor(
    message: string,
    readonly retryAfter: number,
  ) {
    super(message)
    this.name = 'BusyError'
  }
}

/** A principal's reads: how many run, and who waits. */
interface Gate {
  running: number
  waiting: Array<() => void>
}

/**
 * Keeps count of each client's and each principal's open streams, and lets each principal
 * read (pulls, snapshot pages) only a few at a time: one user's flood waits in its own queue
 * while other users' requests go ahead.
 */
export class Fairness {
  readonly #limits: Required<ServerLimits>
  readonly #streams = new Map<string, number>()
  readonly #gates = new Map<string, Gate>()
  /** Requests being answered, by principal; and reads paused until the others' end. */
  readonly #active = new Map<string, number>()
  #paused: Array<{ principal: string; resume: () => void }> = []

  constructor(limits: ServerLimits = {}) {
    this.#limits = {
      streamsPerClient: limits.streamsPerClient ?? 4,
      streamsPerPrincipal: limits.streamsPerPrincipal ?? 50,
      readsPerPrincipal: limits.readsPerPrincipal ?? 1,
      queuedReadsPerPrincipal: limits.queuedReadsPerPrincipal ?? 8,
    }
    for (const [name, value] of Object.entries(this.#limits)) {
      if (!Number.isInteger(value) || value < (name.startsWith('queued') ? 0 : 1)) {
        throw new TypeError(
          `limits.${name} must be a ${name.startsWith('queued') ? 'non-negative' : 'positive'} integer`,
        )
      }
    }
  }

  /**
   * Counts a new stream of `clientId` for `principal`, or throws {@link BusyError} when
   * either has its most. Returns the function that uncounts it (call it once, when it ends).
   */
  openStream(clientId: string, principal: string): () => void {
    const client = `c\u0000${clientId}`
    const owner = `p\u0000${principal}`
    const count = (key: string) => this.#streams.get(key) ?? 0
    if (count(client) >= this.#limits.streamsPerClient) {
      throw new BusyError(`client ${clientId} has ${this.#limits.streamsPerClient} streams open already`, 5)
    }
    if (count(owner) >= this.#limits.streamsPerPrincipal) {
      throw new BusyError(`this user has ${this.#limits.streamsPerPrincipal} streams open already`, 5)
    }
    for (const key of [client, owner]) this.#streams.set(key, count(key) + 1)
    let open = true
    return () => {
      if (!open) return
      open = false
      for (const key of [client, owner]) {
        const left = count(key) - 1
        if (left > 0) this.#streams.set(key, left)
        else this.#streams.delete(key)
      }
    }
  }

  /**
   * Counts `run` as a request of `principal` under way: while it runs, the long reads of
   * principals with more requests under way pause between their parts (see {@link Fairness.pace}).
   */
  async during<T>(principal: string, run: () => Promise<T>): Promise<T> {
    this.#active.set(principal, (this.#active.get(principal) ?? 0) + 1)
    try {
      return await run()
    } finally {
      const left = this.#active.get(principal)! - 1
      if (left > 0) this.#active.set(principal, left)
      else this.#active.delete(principal)
      this.#wake()
    }
  }

  /**
   * Between two parts of a long read of `principal`: goes on once no principal with fewer
   * requests under way than it has one being answered (or after `most` ms), so that a user
   * who asks much gets the server's time when those who ask little do not need it.
   */
  async pace(principal: string, most = 100): Promise<void> {
    await nextTurn()
    if (!this.#othersActive(principal)) return
    await new Promise<void>((resolve) => {
      const entry = { principal, resume: () => (clearTimeout(timer), resolve()) }
      const timer = setTimeout(() => {
        this.#paused = this.#paused.filter((paused) => paused !== entry)
        resolve()
      }, most)
      this.#paused.push(entry)
    })
  }

  /** Whether another principal with fewer requests under way than `principal` has one. */
  #othersActive(principal: string): boolean {
    const mine = this.#active.get(principal) ?? 0
    for (const [other, count] of this.#active) if (other !== principal && count < mine) return true
    return false
  }

  #wake(): void {
    const still = []
    for (const paused of this.#paused) {
      if (this.#othersActive(paused.principal)) still.push(paused)
      else paused.resume()
    }
    this.#paused = still
  }

  /**
   * Throws {@link BusyError} when a read of `principal` would be refused now (its queue is
   * full): checked before anything else is done for the request.
   */
  admitRead(principal: string): void {
    const gate = this.#gates.get(principal)
    if (
      gate &&
      gate.running >= this.#limits.readsPerPrincipal &&
      gate.waiting.length >= this.#limits.queuedReadsPerPrincipal
    ) {
      throw new BusyError('too many reads of this user at once', 1)
    }
  }

  /**
   * Runs one read of `principal` when its turn comes; {@link BusyError} when too many wait
   * (unless `queue: 'unbounded'`: the reads of open streams, whose number is bounded already).
   */
  async read<T>(principal: string, run: () => Promise<T>, queue: 'bounded' | 'unbounded' = 'bounded'): Promise<T> {
    let gate = this.#gates.get(principal)
    if (!gate) this.#gates.set(principal, (gate = { running: 0, waiting: [] }))
    if (gate.running >= this.#limits.readsPerPrincipal) {
      if (queue === 'bounded' && gate.waiting.length >= this.#limits.queuedReadsPerPrincipal) {
        throw new BusyError('too many reads of this user at once', 1)
      }
      await new Promise<void>((resolve) => gate.waiting.push(resolve))
    } else gate.running++
    try {
      // Through the event loop first: with PGlite (in this process) a chain of reads would
      // otherwise run from promise to promise, and no other request would be read meanwhile.
      await nextTurn()
      return await run()
    } finally {
      const next = gate.waiting.shift()
      // The slot passes to the next in line; the last one out forgets the principal.
      if (next) next()
      else if (--gate.running === 0) this.#gates.delete(principal)
    }
  }
}

/** Resolves after pending I/O was handled (`setImmediate` where there is one). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)))
}
