import { inject, type App, type InjectionKey, type Plugin } from 'vue'
import { ChangecastStateError, type AnyTables, type Feed, type RegisteredTables } from '@changecast/core'

const FEED: InjectionKey<Feed<AnyTables>> = Symbol('changecast feed')

/**
 * Makes a feed available to every composable of the app.
 *
 * @example
 * createApp(App).use(changecastPlugin, feed).mount('#app')
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- accepts a feed of any database type
export const changecastPlugin: Plugin<[Feed<any>]> = {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  install(app: App, feed: Feed<any>) {
    app.provide(FEED, feed as Feed<AnyTables>)
  },
}

/**
 * The feed given as argument, else the one installed with {@link changecastPlugin}.
 * @throws {ChangecastStateError} when there is neither.
 */
export function useFeed<Tables = RegisteredTables>(feed?: Feed<Tables>, composable = 'useFeed'): Feed<Tables> {
  const found = feed ?? inject(FEED, null)
  if (!found) {
    throw new ChangecastStateError(
      `${composable}(): no Changecast feed. Install it with app.use(changecastPlugin, feed), or pass { feed } to the composable.`,
    )
  }
  // The provider holds one feed of any tables; `Register` (or the caller's type) says which.
  return found as unknown as Feed<Tables>
}
