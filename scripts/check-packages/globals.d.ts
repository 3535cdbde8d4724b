// The names the READMEs' prose introduces and their short examples use without declaring
// them (scripts/check-packages.mjs typechecks every example against the packed packages).
import type Dexie from 'dexie'
import type { EntityTable } from 'dexie'
import type { Feed, TableMap } from '@changecast/core'
import type { DriverTransaction, SyncHandler } from '@changecast/server'
import type * as react from '@changecast/react'

declare global {
  type Todo = { id: number; title: string; done: boolean; votes?: number }
  type AppDb = Dexie & { todos: EntityTable<Todo, 'id'>; notes: EntityTable<{ id: number; text: string }, 'id'> }
  /** The app's database, and the feed `changecast(db)` returned. */
  const db: AppDb
  const feed: Feed<TableMap<AppDb>>
  /** The server handler `createSyncHandler(…)` returned, and a transaction of the app's own. */
  const sync: SyncHandler
  const client: DriverTransaction
  /** The app's own functions. */
  function handler(event: unknown): void
  function token(): Promise<string>
  function refresh(key: unknown): void
  function render(value: unknown): void
  function toast(message: string, detail?: unknown): void
  function reloadFromDb(): void
  const lastRev: number
  /** The app's sign-in code (the Auth section of the core README). */
  const auth: { getToken(): Promise<string>; expiresSoon(token: string): boolean; refresh(): Promise<string> }
  /** Hooks, in the root README's one-line summary. */
  const useEntity: typeof react.useEntity
  const useTable: typeof react.useTable
}
