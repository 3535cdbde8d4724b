/**
 * Runs `lead` while this context holds the sync lock of `name`: one context per origin
 * and database at a time (Web Locks). When the holder closes, the next waiting context
 * takes over at once. Where Web Locks do not exist (Node, old browsers), this context
 * leads alone. Returns a function that stops leading (or waiting).
 */
export function electLeader(name: string, lead: (signal: AbortSignal) => Promise<void>): () => void {
  const controller = new AbortController()
  const locks = (globalThis.navigator as { locks?: LockManager } | undefined)?.locks
  const run = () =>
    lead(controller.signal).catch((error: unknown) => {
      if (!controller.signal.aborted) console.error('[changecast] sync leader stopped:', error)
    })
  if (!locks) {
    void run()
  } else {
    locks
      .request(name, { signal: controller.signal }, async () => {
        await run()
      })
      .catch((error: unknown) => {
        if (!controller.signal.aborted) console.error('[changecast] could not take the sync lock:', error)
      })
  }
  return () => controller.abort()
}
