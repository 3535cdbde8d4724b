/**
 * Calls `sleep` when the context may stop receiving messages (page frozen, or put in
 * the back/forward cache) and `wake` when it runs again (resumed, restored from the
 * back/forward cache, or visible again). In workers and Node there are no such events
 * and nothing is registered. Returns a function that removes the listeners.
 */
export function watchLifecycle(sleep: () => void, wake: () => void): () => void {
  const doc = (globalThis as { document?: EventTarget & { visibilityState?: string } }).document
  const win = typeof window === 'object' ? (window as EventTarget) : undefined
  if (!doc || !win) return () => {}
  const persisted = (then: () => void) => (event: Event) => void ((event as PageTransitionEvent).persisted && then())
  const listeners: Array<[EventTarget, string, (event: Event) => void]> = [
    [doc, 'freeze', sleep],
    [doc, 'resume', wake],
    [doc, 'visibilitychange', () => void (doc.visibilityState === 'visible' && wake())],
    [win, 'pagehide', persisted(sleep)],
    [win, 'pageshow', persisted(wake)],
  ]
  for (const [target, type, listener] of listeners) target.addEventListener(type, listener)
  return () => {
    for (const [target, type, listener] of listeners) target.removeEventListener(type, listener)
  }
}
