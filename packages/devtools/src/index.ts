// The entry apps import: tiny. The panel itself is loaded (a dynamic import) only when
// `mountDevtools` is called, so an app that never mounts it pays nothing but these lines.
import { InvalidOptionsError, type AnyTables, type ChangeBatch, type Feed } from '@changecast/core'

/** Where the panel goes. */
export type DevtoolsPosition = 'bottom-right' | 'bottom-left' | 'top-right' | 'top-left'

/** Options of {@link mountDevtools}. */
export interface DevtoolsOptions {
  /**
   * Corner of the page for the floating button and panel. Ignored with `target`.
   * @default 'bottom-right'
   */
  position?: DevtoolsPosition
  /** An element to render the panel into, open and inline, instead of floating over the page. */
  target?: HTMLElement
  /** Start open (floating panel). @default false */
  open?: boolean
  /** Events kept for the timeline and entity histories; older ones drop off. @default 10000 */
  keep?: number
}

/** A mounted panel. */
export interface DevtoolsHandle {
  /** Resolves once the panel is loaded and drawn; rejects when it could not load. */
  readonly ready: Promise<void>
  /** Removes the panel and every subscription it holds. Calling it twice is harmless. */
  unmount(): void
}

const POSITIONS: readonly DevtoolsPosition[] = ['bottom-right', 'bottom-left', 'top-right', 'top-left']

/**
 * Mounts the Changecast devtools for `feed`: a panel in a shadow root (no style leaks either
 * way) with the live event timeline, the tabs and workers heard from, sync status with the
 * outbox, set-aside rows and rejections, and any entity's history. Events are recorded from
 * this call on, while the panel's code loads.
 *
 * @example
 * if (import.meta.env.DEV) mountDevtools(feed, { position: 'bottom-left' })
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a feed of any database type
export function mountDevtools(feed: Feed<any>, options: DevtoolsOptions = {}): DevtoolsHandle {
  const { position = 'bottom-right', target, open = false, keep = 10_000 } = options
  if (!POSITIONS.includes(position)) {
    throw new InvalidOptionsError(
      `mountDevtools: position must be one of ${POSITIONS.join(', ')}, got ${JSON.stringify(position)}.`,
    )
  }
  if (target !== undefined && !(target instanceof HTMLElement)) {
    throw new InvalidOptionsError('mountDevtools: target must be an HTMLElement.')
  }
  if (!Number.isInteger(keep) || keep < 1) {
    throw new InvalidOptionsError(`mountDevtools: keep must be a positive integer, got ${String(keep)}.`)
  }
  const typed = feed as Feed<AnyTables>
  const backlog: ChangeBatch[] = []
  let unmounted = false
  let destroy: (() => void) | undefined
  const record = typed.onBatch((batch) => backlog.push(batch))
  const ready = import('./panel.js').then(({ createPanel }) => {
    record()
    if (unmounted) return
    destroy = createPanel(typed, { position, target, open, keep }, backlog)
  })
  ready.catch((error: unknown) => {
    record()
    console.error('[changecast] The devtools could not load:', error)
  })
  return {
    ready,
    unmount() {
      if (unmounted) return
      unmounted = true
      record()
      destroy?.()
    },
  }
}
