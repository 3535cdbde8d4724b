export { createSyncServer } from './sync-server.js'
export type { SyncServer, SyncServerOptions } from './sync-server.js'
export { syncHandlers } from './handlers.js'
export { syncMiddleware } from './node-middleware.js'
