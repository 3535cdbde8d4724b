export { ChangecastProvider, useFeed } from './context.js'
export { useChangeEvent, useChanges, useEntity, useRejections, useSyncStatus, useTable } from './hooks.js'
export type { FeedOption } from './hooks.js'
export type { ChangecastProviderProps } from './context.js'
