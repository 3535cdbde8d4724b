// The main entry loads neither msw (`@changecast/testing/msw`) nor Vite (`@changecast/testing/vite`).
export { createSyncServer } from './sync-server.js'
export type { SyncServer, SyncServerBackup, SyncServerOptions } from './sync-server.js'
export { syncMiddleware } from './node-middleware.js'
export { withFaults } from './faults.js'
export type { FaultOptions, FaultyHandler } from './faults.js'
