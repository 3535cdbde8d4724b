import { LIMITS } from '@changecast/core/protocol'
import type { PendingPush, PushOutcome } from './store/push.js'

interface Waiting {
  request: PendingPush
  size: number
  resolve(outcome: PushOutcome): void
  reject(error: unknown): void
}

/** Most requests stored in one transaction. */
const MAX_GROUP = 200

/**
 * Group commit: pushes that arrive while a transaction is running wait, and are then stored
 * together in the next one (in arrival order), so the log's one lock is taken once per
 * group instead of once per request. A group that fails is tried again request by request,
 * so one request's failure never fails another's.
 */
export class PushQueue {
  readonly #store: (requests: readonly PendingPush[]) => Promise<PushOutcome[]>
  #waiting: Waiting[] = []
  #running = false

  constructor(store: (requests: readonly PendingPush[]) => Promise<PushOutcome[]>) {
    this.#store = store
  }

  push(request: PendingPush, size: number): Promise<PushOutcome> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ request, size, resolve, reject })
      if (!this.#running) void this.#drain()
    })
  }

  async #drain(): Promise<void> {
    this.#running = true
    try {
      while (this.#waiting.length > 0) {
        // Let requests that have arrived meanwhile be read first: one transaction then stores
        // them too (a transaction's fixed cost is most of a small push, PGlite's above all).
        await new Promise((resolve) => setTimeout(resolve, 0))
        let bytes = 0
        let count = 0
        while (count < this.#waiting.length && count < MAX_GROUP) {
          bytes += this.#waiting[count]!.size
          if (count > 0 && bytes > LIMITS.replyBytes) break
          count++
        }
        const group = this.#waiting.splice(0, count)
        try {
          const outcomes = await this.#store(group.map((waiting) => waiting.request))
          group.forEach((waiting, i) => waiting.resolve(outcomes[i]!))
        } catch (error) {
          if (group.length === 1) group[0]!.reject(error)
          else for (const waiting of group) await this.#single(waiting)
        }
      }
    } finally {
      this.#running = false
    }
  }

  async #single(waiting: Waiting): Promise<void> {
    try {
      const [outcome] = await this.#store([waiting.request])
      waiting.resolve(outcome!)
    } catch (error) {
      waiting.reject(error)
    }
  }
}
