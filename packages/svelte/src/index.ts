export { changes, entity, entityState, getFeed, rejections, setChangecastContext, syncStatus, table } from './live.js'
export type { FeedOption, Live, MaybeGetter } from './live.js'
export type { EntityState } from '@changecast/core'
