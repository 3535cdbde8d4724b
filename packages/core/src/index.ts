export { changecast } from './changecast.js'
export type { Feed } from './changecast.js'
export {
  ChangecastError,
  ChangecastStateError,
  InvalidFilterError,
  InvalidOptionsError,
  NotCloneableError,
  SubscriberError,
} from './errors.js'
export type { ChangecastErrorCode } from './errors.js'
export type { ResyncInfo } from './transport/delivery.js'
export type {
  AnyTables,
  BatchOf,
  ChangeBatch,
  ChangecastOptions,
  ChangeEvent,
  ChangeFilter,
  ChangeSource,
  ChangeType,
  EventOf,
  TableMap,
  TableName,
  TableShape,
  TablesOf,
  Topic,
  Unsubscribe,
} from './types.js'
