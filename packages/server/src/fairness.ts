/** Bounds that keep one user from starving the others (see `limits` in `createSyncHandler`). */
export interface ServerLimits {
  /** Streams one client id may have open at once (a reconnect may overlap the old one briefly). @default 4 */
  streamsPerClient?: number
  /** Streams one principal may have open at once, over all its clients. @default 50 */
  streamsPerPrincipal?: number
  /** Pulls and snapshot pages of one principal read at once; more wait their turn. @default 2 */
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

  constructor(limits: ServerLimits = {}) {
    this.#limits = {
      streamsPerClient: limits.streamsPerClient ?? 4,
      streamsPerPrincipal: limits.streamsPerPrincipal ?? 50,
      readsPerPrincipal: limits.readsPerPrincipal ?? 2,
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

  /** Runs one read of `principal` when its turn comes; {@link BusyError} when too many wait. */
  async read<T>(principal: string, run: () => Promise<T>): Promise<T> {
    let gate = this.#gates.get(principal)
    if (!gate) this.#gates.set(principal, (gate = { running: 0, waiting: [] }))
    if (gate.running >= this.#limits.readsPerPrincipal) {
      if (gate.waiting.length >= this.#limits.queuedReadsPerPrincipal) {
        throw new BusyError('too many reads of this user at once', 1)
      }
      await new Promise<void>((resolve) => gate.waiting.push(resolve))
    } else gate.running++
    try {
      return await run()
    } finally {
      const next = gate.waiting.shift()
      // The slot passes to the next in line; the last one out forgets the principal.
      if (next) next()
      else if (--gate.running === 0) this.#gates.delete(principal)
    }
  }
}
