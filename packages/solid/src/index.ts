export {
  ChangecastProvider,
  createChangeEvent,
  createChanges,
  createEntity,
  createEntityState,
  createRejections,
  createSyncStatus,
  createTable,
  useFeed,
} from './primitives.js'
export type { ChangecastProviderProps, FeedOption, MaybeAccessor } from './primitives.js'
export type { EntityState } from '@changecast/core'
