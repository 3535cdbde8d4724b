export { changecast } from './changecast.js'
export type { Feed } from './changecast.js'
export {
  ChangecastError,
  ChangecastStateError,
  InvalidFilterError,
  InvalidOptionsError,
  NotCloneableError,
  SubscriberError,
  SyncError,
} from './errors.js'
export type { ChangecastErrorCode, SyncErrorReason } from './errors.js'
export type { ResyncInfo } from './transport/delivery.js'
export { entityStateStore, entityStore } from './stores/entity-store.js'
export type { EntityState } from './stores/entity-store.js'
export { tableStore } from './stores/table-store.js'
export type { KeyPath, TableQuery } from './stores/table-store.js'
export { changesStore } from './stores/changes-store.js'
export { rejectionsStore } from './stores/rejections-store.js'
export { parametersKey, syncOf, syncStatusStore } from './stores/binding-support.js'
export type {
  CurrentValue,
  RefusedChange,
  SetAsideItem,
  SyncAdapter,
  SyncController,
  SyncHost,
  SyncReceipt,
  SyncRejection,
  SyncSession,
  SyncState,
  SyncStatus,
} from './sync-port.js'
export type { ExternalStore } from './stores/external-store.js'
export type {
  AnyTables,
  BatchOf,
  ChangeBatch,
  ChangecastOptions,
  ChangeEvent,
  ChangeEventBase,
  CreateEvent,
  DeleteEvent,
  UpdateEvent,
  FieldOp,
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
