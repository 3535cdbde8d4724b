import type { Dexie, IndexableType, Transaction } from 'dexie'
import type { SyncError } from './errors.js'
import type { ResyncInfo } from './transport/delivery.js'
import type { ChangeBatch, ChangeType, Unsubscribe } from './types.js'

/**
 * What the sync is doing: `idle` (nothing to do), `pushing`, `pulling`, `offline` (the
 * browser or the server cannot be reached — by a push, a pull or the stream; retrying),
 * `unauthorized` (the server refused the app's credentials twice, fresh ones included:
 * sync goes on by itself once `headers()` returns new ones, or on `resume()`),
 * `principal-changed` (the credentials are another user's than the one whose synced data
 * this device holds: call `signOut()`, or sign that user in again), `signed-out` (after
 * `signOut()`: waiting for the next user's credentials — `headers()` returning others — or
 * `resume()`), `error` (stopped until `flush()` or `resume()`), `closed` (the database is
 * closed; sync resumes when it opens).
 */
export type SyncState =
  'idle' | 'pushing' | 'pulling' | 'offline' | 'unauthorized' | 'principal-changed' | 'signed-out' | 'error' | 'closed'

/** Observable sync status (`feed.sync.status`): the same object until something changes. */
export interface SyncStatus {
  state: SyncState
  /** Local commits (changelog rows) the server has not answered yet, set-aside ones excluded. */
  outbox: number
  /** Rows and batches set aside because they can never go through as they are (see `setAside()`). */
  setAside: number
  /** Rejections the app has not dismissed yet (see `rejections()`). */
  rejections: number
  /** When the server last answered a request with success (ms since the epoch); absent before. */
  lastContactAt?: number
  /** The last problem, until the next successful round. */
  lastError?: { message: string; reason: SyncError['reason']; status?: number; rev?: number }
  /**
   * The newest local changelog rev the server has answered (acked or rejected): every local
   * commit up to it has reached the server, or was refused. 0 before the first answer.
   */
  lastSyncedRev: number
  /**
   * The server revision this client is up to date with: every server batch up to it has
   * been applied here (or was this client's own). 0 before the first pull.
   */
  serverRev: number
  /** True in the one context (tab, worker) that talks to the server for this database. */
  leader: boolean
  /** True after `pause()`, until `resume()`. */
  paused: boolean
  /** `'bootstrap'` while a snapshot of the server's state is loading (see `loaded` and `total`). */
  phase?: 'bootstrap'
  /** Entities of the snapshot loaded so far, while `phase` is `'bootstrap'`. */
  loaded?: number
  /** Entities the snapshot holds, while `phase` is `'bootstrap'`. */
  total?: number
}

/** One entity as the server holds it, sent with a rejection. */
export interface CurrentValue {
  table: string
  key: IndexableType
  /** Absent when the entity does not exist on the server. */
  value?: unknown
}

/** One change of a refused local commit, as it was sent. */
export interface RefusedChange {
  type: ChangeType
  table: string
  key: IndexableType
  /** The value written (`create`, `update`). */
  value?: unknown
}

/** A local commit the server refused. Its entities now hold the server's values (unless written again since). */
export interface SyncRejection {
  /** Changelog rev of the refused local commit. */
  rev: number
  /**
   * Why, for machines: the server's code (`invalid`: a value fails its rules; `forbidden`: the
   * user may not make the change; `gone`: an update merged into an entity the server no longer
   * has; `unmergeable`: an update that does not fit the server's value; or another the server
   * documents), `rejected` when it gave
   * none, or `lost-on-server` for a commit the server had acknowledged and no longer has (it
   * was restored from a backup): offer to make it again.
   */
  code: string
  /** The server's reason, for people. */
  reason: string
  /** What the commit wrote, as it was sent: what the user made that was refused. */
  changes: RefusedChange[]
  /** The server's state of the entities the commit touched, when it answered. */
  current: CurrentValue[]
  /** When the answer arrived (ms since the epoch). */
  at: number
}

/**
 * Something set aside because it can never go through as it is: a local commit that cannot
 * be sent (`push`) or a server batch that cannot be applied (`apply`). Everything after it
 * went on. Retry it (after fixing the cause) or drop it.
 */
export interface SetAsideItem {
  kind: 'push' | 'apply'
  /** Local changelog rev (`push`) or server revision (`apply`). */
  rev: number
  /** Why it was set aside. */
  reason: string
  /** When it was set aside (ms since the epoch). */
  at: number
  /** What it changes. */
  changes: Array<{ type: ChangeType; table: string; key: IndexableType }>
}

/** How the server answered one local commit (`feed.sync.settled(rev)`). */
export interface SyncReceipt {
  rev: number
  /** `acked`: on the server; `rejected`: refused (see `rejections()`); `dropped`: set aside, then dropped by the app. */
  status: 'acked' | 'rejected' | 'dropped'
  /** Why, for `rejected` and `dropped`. */
  reason?: string
}

/** `feed.sync`: status, control and events of the server sync, in every tab and worker. */
export interface SyncController {
  /** The current status (the same object until it changes). In a tab that does not lead, the leader's. */
  readonly status: SyncStatus
  /** Calls `listener` after every status change. Returns an unsubscribe function. */
  subscribe(listener: () => void): Unsubscribe
  /** `status`, as a function (for `useSyncExternalStore`). */
  getSnapshot(): SyncStatus
  /**
   * Pushes the outbox and pulls now. Resolves once a round that started after the call
   * has emptied the outbox (set-aside rows excepted) and pulled. Retryable failures are
   * retried (with backoff) up to `attempts` rounds; then, or at once for a failure that
   * is not retried, it rejects with the {@link SyncError}. Works from any tab or worker,
   * and across leader hand-overs; called before the database opens, it waits for it (a
   * closed database rejects it, with the reason `closed`).
   * @default attempts 5
   */
  flush(options?: { attempts?: number }): Promise<void>
  /**
   * Resolves when the server has answered local commit `rev` (default: the newest local
   * commit so far), in whichever tab or worker asks: a write receipt.
   * @example
   * await db.todos.put(todo)
   * const receipt = await feed.sync.settled() // { rev, status: 'acked' }
   */
  settled(rev?: number): Promise<SyncReceipt>
  /** Stops talking to the server, in every tab (local writes keep queueing in the outbox). */
  pause(): void
  /** Starts again after `pause()`, or after a failure that is not retried. */
  resume(): void
  /** Receives sync problems, with the rev concerned when there is one. */
  onError(handler: (error: SyncError) => void): Unsubscribe
  /** Receives rejections, in every tab and worker, as they arrive. */
  onRejected(handler: (rejection: SyncRejection) => void): Unsubscribe
  /** Rejections not dismissed yet, oldest first (a conflict inbox that survives reloads). */
  rejections(): Promise<SyncRejection[]>
  /** Removes a rejection from `rejections()`. */
  dismiss(rev: number): Promise<void>
  /** Rows and batches set aside, oldest first. */
  setAside(): Promise<SetAsideItem[]>
  /**
   * Tries a set-aside item again (push: sends it again; apply: applies what is not outdated).
   * Needs `httpSync({ setAside: setAsideActions })`; without it, rejects with an `InvalidOptionsError`.
   */
  retry(item: Pick<SetAsideItem, 'kind' | 'rev'>): Promise<void>
  /**
   * Forgets a set-aside item. For a local commit, its entities go back to the server's
   * value (or, when none is known, to their value before that commit), unless written since.
   * Needs `httpSync({ setAside: setAsideActions })`; without it, rejects with an `InvalidOptionsError`.
   */
  drop(item: Pick<SetAsideItem, 'kind' | 'rev'>): Promise<void>
  /**
   * Removes the signed-in user's synced data from this device, for the next user of the
   * same database: every row of the synced tables (delete events marked `removed`), the
   * changelog's rows, the position, rejections and receipts; the sync starts over as a new
   * client, once `headers()` return other credentials than the last user's (or on `resume()`).
   * That user's unsent writes are kept apart, bound to them, and pushed when the server names
   * them again (they sign in again) — or removed with `discardPending: true` or
   * {@link discardPending}. Call it at sign-out; runs in whichever tab or worker leads.
   * Needs `httpSync({ users: userSwitching })`; without it, rejects with an `InvalidOptionsError`.
   * @example
   * await feed.sync.signOut()
   * auth.clearToken()
   */
  signOut(options?: { discardPending?: boolean }): Promise<void>
  /**
   * Removes the unsent writes kept for users who signed out (their receipts say `dropped`).
   * Needs `httpSync({ users: userSwitching })`.
   */
  discardPending(): Promise<void>
}

/** What core offers a sync adapter. */
export interface SyncHost {
  readonly db: Dexie
  /** Id of this context (tab, worker). */
  readonly origin: string
  /** False for tables Changecast does not capture: they are not synced. */
  isCaptured(table: string): boolean
  /** Committed batches delivered in this context (local, other tabs, remote), in commit order. */
  onBatch(listener: (batch: ChangeBatch) => void): Unsubscribe
  /**
   * Marks a Dexie transaction as one that applies server changes: its events are
   * `source: 'remote'` with the given origin and tx, and its changelog row is never pushed.
   * `removed`: entities (table and encoded key) whose deletes only take them out of this
   * client's view. `unlogged`: the changelog row records how many changes the transaction
   * made, not the changes (a snapshot page: see `LogRow.unlogged`). Returns a function that
   * gives the rev of that row once the transaction has committed (undefined without a
   * changelog, or when it wrote nothing).
   */
  markRemote(
    transaction: Transaction,
    origin: string,
    tx: string,
    options?: { removed?: ReadonlySet<string> | undefined; unlogged?: boolean },
  ): () => number | undefined
  /** Tells this context's `onResync` handlers that it fetched the server's state anew. */
  resync(info: ResyncInfo): void
}

/** A running sync, as an adapter hands it to core. */
export interface SyncSession extends SyncController {
  /** The oldest changelog rev the sync still needs (compaction keeps it and everything after). */
  keepFrom(): Promise<number>
  /** Stops for good (`feed.close()`). */
  close(): void
}

/**
 * A sync adapter: `changecast(db, { sync: httpSync({ url }) })`. Core declares this port;
 * `@changecast/core/sync` ships the HTTP one, so apps without sync do not load it.
 */
export interface SyncAdapter {
  /** Object stores the adapter keeps in the database (Dexie schema syntax), added with the changelog. */
  readonly stores: Readonly<Record<string, string>>
  /** Starts syncing. Called once, by `changecast()`, before the database opens. */
  start(host: SyncHost): SyncSession
}
