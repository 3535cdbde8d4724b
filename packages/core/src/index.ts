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
export { entityStore } from './stores/entity-store.js'
export { tableStore } from './stores/table-store.js'
export type { TableQuery } from './stores/table-store.js'
export { changesStore } from './stores/changes-store.js'
export { SyncError } from './sync/sync-engine.js'
export type { SyncController, SyncOptions, SyncRejection, SyncState, SyncStatus } from './sync/sync-engine.js'
export { PROTOCOL_VERSION } from './sync/protocol.js'
export type {
  CurrentValue,
  PullReply,
  PushBatch,
  PushReply,
  PushRequest,
  Rejection,
  RemoteBatch,
  WireChange,
} from './sync/protocol.js'
export type { ExternalStore } from './stores/external-store.js'
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
  KeyOf,
  RegisteredTables,
  Register,
  TableMap,
  TableName,
  TableShape,
  TablesOf,
  Topic,
  Unsubscribe,
  ValueOf,
} from './types.js'
