export { ChangecastProvider, useFeed } from './context.js'
export {
  useChangeEvent,
  useChanges,
  useEntity,
  useEntityState,
  useRejections,
  useSyncStatus,
  useTable,
} from './hooks.js'
export type { EntityState } from '@changecast/core'
export type { FeedOption } from './hooks.js'
export type { ChangecastProviderProps } from './context.js'
