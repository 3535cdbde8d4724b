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
  const onPageHide = (event: Event): void => {
    if ((event as PageTransitionEvent).persisted) sleep()
  }
  const onPageShow = (event: Event): void => {
    if ((event as PageTransitionEvent).persisted) wake()
  }
  const onVisibility = (): void => {
    if (doc.visibilityState === 'visible') wake()
  }
  doc.addEventListener('freeze', sleep)
  doc.addEventListener('resume', wake)
  doc.addEventListener('visibilitychange', onVisibility)
  win.addEventListener('pagehide', onPageHide)
  win.addEventListener('pageshow', onPageShow)
  return () => {
    doc.removeEventListener('freeze', sleep)
    doc.removeEventListener('resume', wake)
    doc.removeEventListener('visibilitychange', onVisibility)
    win.removeEventListener('pagehide', onPageHide)
    win.removeEventListener('pageshow', onPageShow)
  }
}
