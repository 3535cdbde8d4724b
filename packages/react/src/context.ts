import { createContext, createElement, useContext, type ReactNode } from 'react'
import { ChangecastStateError, type AnyTables, type Feed, type RegisteredTables } from '@changecast/core'

const FeedContext = createContext<Feed<AnyTables> | null>(null)

/**
 * Makes a feed available to every hook below it.
 *
 * @example
 * createRoot(el).render(
 *   <ChangecastProvider feed={feed}>
 *     <App />
 *   </ChangecastProvider>,
 * )
 */
export function ChangecastProvider({ feed, children }: ChangecastProviderProps) {
  return createElement(FeedContext.Provider, { value: feed as Feed<AnyTables> }, children)
}

/** Props of {@link ChangecastProvider}. */
export interface ChangecastProviderProps {
  /** The feed returned by `changecast(db)`, of any table map. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- accepts a feed of any database type
  feed: Feed<any>
  children?: ReactNode
}

/**
 * The feed given as argument, else the nearest {@link ChangecastProvider}'s.
 * @throws {ChangecastStateError} when there is neither.
 */
export function useFeed<Tables = RegisteredTables>(feed?: Feed<Tables>, hook = 'useFeed'): Feed<Tables> {
  const provided = useContext(FeedContext)
  const found = feed ?? provided
  if (!found) {
    throw new ChangecastStateError(
      `${hook}(): no Changecast feed. Wrap your components in <ChangecastProvider feed={feed}>, or pass { feed } to the hook.`,
    )
  }
  // The provider holds one feed of any tables; `Register` (or the caller's type) says which.
  return found as unknown as Feed<Tables>
}
