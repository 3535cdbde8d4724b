/**
 * Why the sync loop is woken: a local commit or a server poke (soft: they never cut a
 * backoff short), or `flush()`, the browser going online, `resume()`, a retry or drop
 * (hard).
 */
export type Wake = 'commit' | 'poke' | 'flush' | 'online' | 'resume' | 'command'

export const isHard = (kind: Wake): boolean => kind !== 'commit' && kind !== 'poke'

/** Timers overflow past 2^31 - 1 ms (about 24.8 days) and fire at once. */
const MAX_TIMER = 2 ** 31 - 1

/**
 * Sleeps that end after a time, on an accepted wake-up, or on abort. A wake-up that no
 * sleeper takes (it came while the loop was busy) is kept for the next sleep, so it is
 * never lost.
 */
export class Alarm {
  readonly #waiters = new Set<(kind: Wake) => boolean>()
  readonly #missed = new Set<Wake>()

  /**
   * Waits `ms` (or until woken, when undefined), or until a wake-up that `accept` takes —
   * but never past `signal`'s abort, and never ends before `notBefore` (a server's
   * `Retry-After`): a wake-up before then ends the wait at `notBefore`.
   */
  wait(ms: number | undefined, accept: (kind: Wake) => boolean, signal: AbortSignal, notBefore = 0): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const arm = (delay: number | undefined): void => {
        clearTimeout(timer)
        if (delay !== undefined) timer = setTimeout(done, Math.min(MAX_TIMER, Math.max(0, delay)))
      }
      const done = (): void => {
        clearTimeout(timer)
        this.#waiters.delete(waiter)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const waiter = (kind: Wake): boolean => {
        if (!accept(kind)) return false
        const left = notBefore - Date.now()
        if (left > 0) arm(left)
        else done()
        return true
      }
      if (signal.aborted) return resolve()
      this.#waiters.add(waiter)
      signal.addEventListener('abort', done)
      arm(ms)
      for (const kind of [...this.#missed]) {
        if (accept(kind)) {
          this.#missed.delete(kind)
          waiter(kind)
        }
      }
    })
  }

  ring(kind: Wake): void {
    let taken = false
    for (const waiter of [...this.#waiters]) if (waiter(kind)) taken = true
    if (!taken) this.#missed.add(kind)
  }
}
