/**
 * A BroadcastChannel that can be closed while the context sleeps (frozen or in the
 * back/forward cache) and reopened when it wakes. Absent where the platform has no
 * BroadcastChannel.
 */
export interface TabChannel {
  /** Posts a message; throws the platform's DataCloneError when it cannot be cloned. */
  post(message: unknown): void
  /** Stops listening until `resume()`. */
  suspend(): void
  resume(): void
  close(): void
}

/**
 * Lets a Node process (or worker thread) exit while the channel is open, as it would with
 * only a database open: a feed never keeps a script alive. No-op in browsers.
 */
export function unref(channel: BroadcastChannel): void {
  ;(channel as { unref?: () => void }).unref?.()
}

/** Opens the channel `name`, or returns `undefined` when BroadcastChannel does not exist. */
export function openTabChannel(name: string, onMessage: (data: unknown) => void): TabChannel | undefined {
  if (typeof BroadcastChannel !== 'function') return undefined
  let channel: BroadcastChannel | undefined
  const listen = (): void => {
    channel = new BroadcastChannel(name)
    unref(channel)
    channel.onmessage = (event: MessageEvent) => onMessage(event.data)
    // A message that cannot be deserialised here is dropped; the gap is noticed later.
    channel.onmessageerror = () => onMessage(undefined)
  }
  const stop = (): void => {
    channel?.close()
    channel = undefined
  }
  listen()
  let closed = false
  return {
    post(message) {
      if (closed) return
      // A suspended context still sends: it has no open channel, so use a short-lived one.
      if (channel) channel.postMessage(message)
      else {
        const once = new BroadcastChannel(name)
        try {
          once.postMessage(message)
        } finally {
          once.close()
        }
      }
    },
    suspend() {
      if (!closed) stop()
    },
    resume() {
      if (!closed && !channel) listen()
    },
    close() {
      closed = true
      stop()
    },
  }
}
