export { changecastPlugin, useFeed } from './plugin.js'
export { useChangeEvent, useChanges, useEntity, useRejections, useSyncStatus, useTable } from './composables.js'
export type { FeedOption } from './composables.js'
