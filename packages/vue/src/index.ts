export { changecastPlugin, useFeed } from './plugin.js'
export {
  useChangeEvent,
  useChanges,
  useEntity,
  useEntityState,
  useRejections,
  useSyncStatus,
  useTable,
} from './composables.js'
export type { EntityState } from '@changecast/core'
export type { FeedOption } from './composables.js'
