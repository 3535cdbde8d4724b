import type { SyncController, SyncRejection } from '../sync-port.js'
import { lazyStore, type ExternalStore } from './external-store.js'

/**
 * The rejections of the server sync not dismissed yet, oldest first (a conflict inbox):
 * read from the database when the first subscriber comes, then read again whenever a
 * rejection arrives or one is dismissed, in any tab. Starts empty until the first read.
 *
 * @example
 * const inbox = rejectionsStore(feed.sync!)
 * inbox.subscribe(() => render(inbox.getSnapshot()))
 * await feed.sync!.dismiss(inbox.getSnapshot()[0].rev)
 */
export function rejectionsStore(sync: SyncController): ExternalStore<readonly SyncRejection[]> {
  let rejections: readonly SyncRejection[] = []
  return lazyStore(
    () => rejections,
    (notify) => {
      let active = true
      let reads = 0
      let count = -1
      const load = (): void => {
        const read = ++reads
        sync.rejections().then(
          (found) => {
            // Only the newest read counts: an older one may finish later.
            if (!active || read !== reads) return
            rejections = found
            notify()
          },
          (error: unknown) => console.error('[changecast] Could not read the sync rejections:', error),
        )
      }
      const offRejected = sync.onRejected(load)
      // A dismissal (here or in another tab) shows as a new count in the status.
      const offStatus = sync.subscribe(() => {
        if (sync.status.rejections === count) return
        count = sync.status.rejections
        load()
      })
      count = sync.status.rejections
      load()
      return () => {
        active = false
        offRejected()
        offStatus()
      }
    },
  )
}
