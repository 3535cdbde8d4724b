/**
 * Runs `lead` while this context holds the lock `name`: one context per origin and
 * database at a time (Web Locks). When the holder closes, the next waiting context takes
 * over at once. Where Web Locks do not exist (Node, old browsers), this context leads
 * alone. If `lead` fails, the lock is released and asked for again after `retryMs`.
 * Returns a function that stops leading (or waiting).
 */
export function electLeader(name: string, lead: (signal: AbortSignal) => Promise<void>, retryMs = 1000): () => void {
  const controller = new AbortController()
  const { signal } = controller
  const locks = (globalThis.navigator as { locks?: LockManager } | undefined)?.locks
  const run = async (): Promise<void> => {
    try {
      await lead(signal)
    } catch (error) {
      if (signal.aborted) return
      console.error('[changecast] The sync leader failed; retrying:', error)
      setTimeout(request, retryMs)
    }
  }
  const request = (): void => {
    if (signal.aborted) return
    if (!locks) {
      void run()
      return
    }
    locks.request(name, { signal }, run).catch((error: unknown) => {
      if (!signal.aborted) console.error('[changecast] Could not take the sync lock:', error)
    })
  }
  request()
  return () => controller.abort()
}
