import { createElement, useEffect, useRef, type ReactElement } from 'react'
import type { Feed } from '@changecast/core'
import { useFeed } from '@changecast/react'
import { mountDevtools, type DevtoolsPosition } from './index.js'

/** Props of {@link ChangecastDevtools}. */
export interface ChangecastDevtoolsProps {
  /** The feed to show instead of the nearest `<ChangecastProvider>`'s. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a feed of any database type
  feed?: Feed<any>
  /** Corner for the floating panel. @default 'bottom-right' */
  position?: DevtoolsPosition
  /** Render the panel open, in place (inside this component's element), instead of floating. */
  inline?: boolean
}

/**
 * The Changecast devtools as a React component: mounts the panel (loaded on demand) for the
 * provider's feed, and removes it on unmount.
 *
 * @example
 * <ChangecastProvider feed={feed}>
 *   <App />
 *   {import.meta.env.DEV && <ChangecastDevtools position="bottom-left" />}
 * </ChangecastProvider>
 */
export function ChangecastDevtools({ feed, position, inline = false }: ChangecastDevtoolsProps): ReactElement {
  const resolved = useFeed(feed)
  const ref = useRef<HTMLDivElement>(null)
  useEffect(() => {
    const handle = mountDevtools(resolved, { position, target: inline ? ref.current! : undefined })
    return () => handle.unmount()
  }, [resolved, position, inline])
  return createElement('div', { ref, 'data-changecast-devtools-anchor': '' })
}
