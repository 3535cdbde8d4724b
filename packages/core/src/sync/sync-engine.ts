import type Dexie from 'dexie'
import type { Staging } from '../capture/stage.js'
import { ChangecastError } from '../errors.js'
import { LOG_TABLE, type LogRow } from '../log/changelog.js'
import type { Bus } from '../transport/bus.js'
import type { Unsubscribe } from '../types.js'
import { randomId } from '../util/random-id.js'
import { backoffDelay, type BackoffOptions } from './backoff.js'
import { requestJson, SyncRequestError } from './http.js'
import { electLeader } from './leader.js'
import {
  parsePullReply,
  parsePushReply,
  parseRemoteBatch,
  PROTOCOL_VERSION,
  ProtocolViolation,
  type CurrentValue,
  type PushBatch,
  type PushRequest,
  type RemoteBatch,
  type WireChange,
} from './protocol.js'
import { readEvents } from './sse.js'

/** Name of the store that keeps the sync position (client id, pushed rev, server cursor). */
export const SYNC_TABLE = '_changecast_sync'

/** Options of `changecast(db, { sync })`. */
export interface SyncOptions {
  /** Base URL of the sync server: the client calls `{url}/push`, `{url}/pull`, `{url}/stream`. */
  url: string
  /** Extra request headers, or a function (may be async) that returns them, e.g. a fresh auth token. */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>)
  /** How remote changes come in: Server-Sent Events, polling, or not at all. @default 'stream' */
  pull?: 'stream' | 'poll' | false
  /** Polling interval in ms (`pull: 'poll'`). @default 5000 */
  interval?: number
  /** Changelog rows per push, batches per pull. @default 50 */
  batchSize?: number
  /** Retry delays. @default { base: 500, cap: 60000 } */
  backoff?: BackoffOptions
}

/** What the sync is doing. */
export type SyncState = 'idle' | 'pushing' | 'pulling' | 'offline' | 'error'

/** Observable sync status (`feed.sync.status`). */
export interface SyncStatus {
  state: SyncState
  /** Local commits not yet acknowledged by the server. */
  outbox: number
  /** The last problem, until the next success. */
  lastError?: { message: string; status?: number }
  /** Highest local changelog rev the server has acknowledged (or rejected). */
  lastSyncedRev: number
  /** Newest server revision applied here. */
  serverRev: number
  /** True in the one context (tab, worker) that talks to the server. */
  leader: boolean
  /** True after `pause()`, until `resume()`. */
  paused: boolean
}

/** A change the server refused; its current value has been applied locally. */
export interface SyncRejection {
  /** Changelog rev of the rejected local commit. */
  rev: number
  reason: string
  current: CurrentValue[]
}

/** A problem talking to the server. The outbox is intact; retryable ones are retried. */
export class SyncError extends ChangecastError {
  constructor(
    message: string,
    /** HTTP status, when the server answered. */
    readonly status: number | undefined,
    /** The sync retries by itself; false means it waits for `flush()` or `resume()`. */
    readonly retrying: boolean,
    options?: { cause?: unknown },
  ) {
    super('sync-failed', message, options)
    this.name = 'SyncError'
  }
}

/** `feed.sync`: status, control and events of the server sync. */
export interface SyncController {
  /** The current status (same object until it changes). */
  readonly status: SyncStatus
  /** Calls `listener` after every status change. Returns an unsubscribe function. */
  subscribe(listener: () => void): Unsubscribe
  /** `status`, as a function (for `useSyncExternalStore`). */
  getSnapshot(): SyncStatus
  /**
   * Pushes the outbox and pulls now, without waiting for a timer or backoff. Resolves once
   * the outbox is empty and a pull has run; rejects with the {@link SyncError} that stopped it.
   */
  flush(): Promise<void>
  /** Stops talking to the server (local writes keep queueing in the outbox). */
  pause(): void
  /** Starts again after `pause()`, or after a non-retryable error. */
  resume(): void
  /** Receives sync errors. */
  onError(handler: (error: SyncError) => void): Unsubscribe
  /** Receives rejections: the server refused a change and its current value was applied locally. */
  onRejected(handler: (rejection: SyncRejection) => void): Unsubscribe
}

interface SyncRow {
  id: 'state'
  clientId: string
  pushedUpTo: number
  cursor: string
  serverRev: number
}

type Message =
  | { type: 'status'; status: SyncStatus }
  | { type: 'flush'; id: string }
  | { type: 'flushed'; id: string; error?: string }
  | { type: 'pause' | 'resume' | 'hello' }

export interface SyncEngineConfig {
  db: Dexie
  origin: string
  bus: Bus
  staging: Staging
  options: SyncOptions
  isCaptured(table: string): boolean
}

const initialStatus: SyncStatus = {
  state: 'idle',
  outbox: 0,
  lastSyncedRev: 0,
  serverRev: 0,
  leader: false,
  paused: false,
}

/**
 * Pushes the changelog outbox to the server and applies remote batches, in the one
 * context that holds the sync lock; other contexts follow its status over a channel.
 */
export class SyncEngine implements SyncController {
  status: SyncStatus = initialStatus
  private readonly listeners = new Set<() => void>()
  private readonly errorHandlers = new Set<(error: SyncError) => void>()
  private readonly rejectionHandlers = new Set<(rejection: SyncRejection) => void>()
  private readonly flushes = new Map<string, { resolve: () => void; reject: (error: Error) => void }>()
  private readonly channel: BroadcastChannel | undefined
  private readonly stopLeading: () => void
  private readonly cleanups: Array<() => void> = []
  private wakeUp: (() => void) | undefined
  private halted = false
  private pullWanted: boolean
  private closed = false
  private readonly base: string

  constructor(private readonly config: SyncEngineConfig) {
    const { db, options } = config
    this.base = options.url.replace(/\/+$/, '')
    this.pullWanted = options.pull !== false
    if (typeof BroadcastChannel === 'function') {
      this.channel = new BroadcastChannel(`changecast-sync:${db.name}`)
      this.channel.onmessage = (event: MessageEvent<Message>) => this.onMessage(event.data)
      this.channel.postMessage({ type: 'hello' } satisfies Message)
    }
    // New commits of this client (this tab or another): the outbox grew.
    this.cleanups.push(
      config.bus.onBatch((batch) => {
        if (batch.source !== 'remote') this.notify()
      }),
    )
    // Going online retries at once; going offline shows in the status at once.
    const network = () => this.notify()
    if (typeof addEventListener === 'function') {
      addEventListener('online', network)
      addEventListener('offline', network)
      this.cleanups.push(() => {
        removeEventListener('online', network)
        removeEventListener('offline', network)
      })
    }
    this.stopLeading = electLeader(`changecast-sync:${db.name}`, (signal) => this.lead(signal))
  }

  // ---- public controller --------------------------------------------------------------

  subscribe(listener: () => void): Unsubscribe {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  getSnapshot = (): SyncStatus => this.status

  flush(): Promise<void> {
    const id = randomId()
    return new Promise((resolve, reject) => {
      this.flushes.set(id, { resolve, reject })
      // Answered by this context if it leads (now or once it takes the lock), else by the leader.
      this.requestFlush(id)
      if (!this.status.leader) this.channel?.postMessage({ type: 'flush', id } satisfies Message)
    })
  }

  pause(): void {
    if (!this.status.leader) this.channel?.postMessage({ type: 'pause' } satisfies Message)
    this.setStatus({ paused: true })
  }

  resume(): void {
    if (!this.status.leader) this.channel?.postMessage({ type: 'resume' } satisfies Message)
    this.halted = false
    this.setStatus({ paused: false })
    this.notify()
  }

  onError(handler: (error: SyncError) => void): Unsubscribe {
    this.errorHandlers.add(handler)
    return () => this.errorHandlers.delete(handler)
  }

  onRejected(handler: (rejection: SyncRejection) => void): Unsubscribe {
    this.rejectionHandlers.add(handler)
    return () => this.rejectionHandlers.delete(handler)
  }

  /** The oldest changelog rev the outbox still needs (compaction keeps it). */
  async keepFrom(): Promise<number> {
    const row = await this.syncTable().get('state')
    return (row?.pushedUpTo ?? 0) + 1
  }

  close(): void {
    this.closed = true
    this.stopLeading()
    this.cleanups.forEach((cleanup) => cleanup())
    this.channel?.close()
    this.wakeUp?.()
    for (const { reject } of this.flushes.values()) reject(new SyncError('The feed was closed.', undefined, false))
    this.flushes.clear()
  }

  // ---- leader --------------------------------------------------------------------------

  private async lead(signal: AbortSignal): Promise<void> {
    await this.config.db.open()
    let row = await this.loadState()
    this.setStatus({ leader: true, lastSyncedRev: row.pushedUpTo, serverRev: row.serverRev })
    if (this.config.options.pull === 'stream' || this.config.options.pull === undefined) {
      void this.stream(signal)
    }
    let attempt = 0
    const interval = this.config.options.interval ?? 5000
    while (!signal.aborted && !this.closed) {
      await this.refreshOutbox()
      const offline = typeof navigator === 'object' && navigator.onLine === false
      if (this.status.paused || this.halted || offline) {
        this.setStatus({ state: offline ? 'offline' : this.halted ? 'error' : 'idle' })
        if (offline)
          this.settleFlushes(new Set(this.pendingFlushes), new SyncError('The browser is offline.', undefined, true))
        await this.sleep(signal)
        continue
      }
      // Flushes asked for before this round starts are answered by it; later ones by the next.
      const flushing = new Set(this.pendingFlushes)
      try {
        row = await this.pushAll(row, signal)
        if (this.config.options.pull !== false && (this.pullWanted || this.config.options.pull === 'poll')) {
          this.pullWanted = false
          row = await this.pullAll(row, signal)
        }
        attempt = 0
        await this.refreshOutbox()
        this.setStatus({ state: 'idle', lastError: undefined })
        this.settleFlushes(flushing)
        if (this.pendingFlushes.size === 0) {
          await this.sleep(signal, this.config.options.pull === 'poll' ? interval : undefined)
        }
      } catch (error) {
        if (signal.aborted || this.closed) return
        const failure = toSyncError(error)
        this.report(failure)
        this.setStatus({
          state: failure.status === undefined && failure.retrying ? 'offline' : 'error',
          lastError: { message: failure.message, status: failure.status },
        })
        this.settleFlushes(flushing, failure)
        if (!failure.retrying) {
          this.halted = true
          continue
        }
        attempt++
        const delay = Math.max(
          (error as SyncRequestError).retryAfter ?? 0,
          backoffDelay(attempt, this.config.options.backoff),
        )
        await this.sleep(signal, delay)
        row = await this.loadState()
      }
    }
  }

  private async pushAll(row: SyncRow, signal: AbortSignal): Promise<SyncRow> {
    const size = this.config.options.batchSize ?? 50
    for (;;) {
      const rows = await this.log()
        .where(':id')
        .above(row.pushedUpTo)
        .filter((entry) => entry.source === 'local')
        .limit(size)
        .toArray()
      if (rows.length === 0) return row
      this.setStatus({ state: 'pushing' })
      const batches = rows.map(toPushBatch)
      const revs = batches.map((batch) => batch.rev)
      const body: PushRequest = { v: PROTOCOL_VERSION, clientId: row.clientId, batches }
      const reply = parsePushReply(
        await requestJson(
          `${this.base}/push`,
          {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'idempotency-key': `${row.clientId}:${revs[0]}-${revs[revs.length - 1]}`,
              ...(await this.headers()),
            },
            body: JSON.stringify(body),
          },
          signal,
        ),
        revs,
      )
      for (const rejection of reply.rejected) {
        await this.applyCorrection(rejection.rev, rejection.current ?? [])
      }
      row = { ...row, pushedUpTo: Math.max(row.pushedUpTo, ...revs) }
      await this.syncTable().put(row)
      this.setStatus({ lastSyncedRev: row.pushedUpTo })
      for (const rejection of reply.rejected) {
        this.emitRejected({ rev: rejection.rev, reason: rejection.reason, current: rejection.current ?? [] })
      }
    }
  }

  private async pullAll(row: SyncRow, signal: AbortSignal): Promise<SyncRow> {
    const limit = this.config.options.batchSize ?? 50
    for (;;) {
      this.setStatus({ state: 'pulling' })
      const query = `since=${encodeURIComponent(row.cursor)}&limit=${limit}&clientId=${encodeURIComponent(row.clientId)}`
      const reply = parsePullReply(
        await requestJson(`${this.base}/pull?${query}`, { headers: await this.headers() }, signal),
      )
      for (const batch of reply.batches) await this.applyRemote(batch, row.clientId)
      row = { ...(await this.loadState()), cursor: reply.cursor }
      await this.syncTable().put(row)
      if (!reply.more) return row
    }
  }

  private async stream(signal: AbortSignal): Promise<void> {
    let attempt = 0
    while (!signal.aborted && !this.closed) {
      try {
        const row = await this.loadState()
        const query = `since=${encodeURIComponent(row.cursor)}&clientId=${encodeURIComponent(row.clientId)}`
        const response = await fetch(`${this.base}/stream?${query}`, {
          headers: { accept: 'text/event-stream', ...(await this.headers()) },
          signal,
        })
        if (!response.ok || !response.body)
          throw new SyncRequestError(`stream answered ${response.status}`, response.status, true)
        attempt = 0
        for await (const event of readEvents(response.body)) {
          if (event.event === 'batch') {
            await this.applyRemote(parseRemoteBatch(JSON.parse(event.data), 'stream event'), row.clientId)
          } else if (event.event === 'poke' && this.config.options.pull !== false) {
            this.pullWanted = true
            this.notify()
          }
        }
      } catch (error) {
        if (signal.aborted || this.closed) return
        if (error instanceof ProtocolViolation || error instanceof SyntaxError) this.report(toSyncError(error))
      }
      // The stream ended or failed: pull what was missed, reconnect after a pause.
      this.pullWanted = true
      this.notify()
      attempt++
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt, this.config.options.backoff)))
    }
  }

  /** Applies one remote batch in one transaction, at most once (by server revision). */
  private async applyRemote(batch: RemoteBatch, clientId: string): Promise<void> {
    const { db } = this.config
    const tables = this.tablesOf(batch.changes)
    await db.transaction('rw', [...tables, SYNC_TABLE], async (tx) => {
      const row = (await this.syncTable().get('state'))!
      if (batch.rev <= row.serverRev) return
      // A client's own commits may come back from the server: they are already here.
      if (batch.origin !== clientId) {
        this.markRemote(tx, batch.origin, batch.tx)
        await this.write(batch.changes, tables)
      }
      await this.syncTable().put({ ...row, serverRev: batch.rev })
    })
    this.setStatus({ serverRev: Math.max(this.status.serverRev, batch.rev) })
  }

  /** Puts the server's current values in place of a rejected local commit. */
  private async applyCorrection(rev: number, current: CurrentValue[]): Promise<void> {
    const changes: WireChange[] = current.map((item) =>
      item.value === undefined
        ? { type: 'delete', table: item.table, key: item.key }
        : { type: 'update', table: item.table, key: item.key, value: item.value },
    )
    const tables = this.tablesOf(changes)
    if (tables.length === 0) return
    await this.config.db.transaction('rw', tables, async (tx) => {
      this.markRemote(tx, 'server', `rejected:${rev}`)
      await this.write(changes, tables)
    })
  }

  private markRemote(tx: { idbtrans: unknown }, origin: string, id: string): void {
    const stage = this.config.staging.watch(tx.idbtrans as object)
    stage.source = 'remote'
    stage.origin = origin
    stage.tx = id
  }

  private async write(changes: WireChange[], tables: string[]): Promise<void> {
    for (const change of changes) {
      if (!tables.includes(change.table)) continue
      const table = this.config.db.table(change.table)
      if (change.type === 'delete') await table.delete(change.key as never)
      else if (table.schema.primKey.keyPath) await table.put(change.value)
      else await table.put(change.value, change.key as never)
    }
  }

  private tablesOf(changes: WireChange[]): string[] {
    const declared = new Set(this.config.db.tables.map((table) => table.name))
    return [...new Set(changes.map((change) => change.table))].filter(
      (name) => declared.has(name) && this.config.isCaptured(name),
    )
  }

  // ---- state -----------------------------------------------------------------------------

  private syncTable() {
    return this.config.db.table<SyncRow, string>(SYNC_TABLE)
  }

  private log() {
    return this.config.db.table<LogRow, number>(LOG_TABLE)
  }

  private async loadState(): Promise<SyncRow> {
    const table = this.syncTable()
    return this.config.db.transaction('rw', table, async () => {
      const row = await table.get('state')
      if (row) return row
      const created: SyncRow = { id: 'state', clientId: randomId(), pushedUpTo: 0, cursor: '', serverRev: 0 }
      await table.put(created)
      return created
    })
  }

  private async refreshOutbox(): Promise<void> {
    const row = await this.syncTable().get('state')
    const outbox = await this.log()
      .where(':id')
      .above(row?.pushedUpTo ?? 0)
      .filter((entry) => entry.source === 'local')
      .count()
    this.setStatus({ outbox })
  }

  private async headers(): Promise<Record<string, string>> {
    const { headers } = this.config.options
    return typeof headers === 'function' ? await headers() : (headers ?? {})
  }

  // ---- plumbing ----------------------------------------------------------------------

  private sleep(signal: AbortSignal, ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        this.wakeUp = undefined
        resolve()
      }
      const timer = ms === undefined ? undefined : setTimeout(done, ms)
      signal.addEventListener('abort', done)
      this.wakeUp = done
    })
  }

  private notify(): void {
    this.wakeUp?.()
  }

  private requestFlush(id: string): void {
    this.halted = false
    this.pullWanted = true
    this.pendingFlushes.add(id)
    this.notify()
  }

  private readonly pendingFlushes = new Set<string>()

  private settleFlushes(ids: Set<string>, error?: SyncError): void {
    for (const id of ids) {
      this.pendingFlushes.delete(id)
      const local = this.flushes.get(id)
      if (local) {
        this.flushes.delete(id)
        if (error) local.reject(error)
        else local.resolve()
      } else {
        this.channel?.postMessage({ type: 'flushed', id, error: error?.message } satisfies Message)
      }
    }
  }

  private onMessage(message: Message): void {
    if (!message || typeof message !== 'object') return
    if (message.type === 'status' && !this.status.leader) {
      this.status = { ...message.status, leader: false }
      this.listeners.forEach((listener) => listener())
    } else if (message.type === 'hello' && this.status.leader) {
      this.broadcast()
    } else if (message.type === 'flush' && this.status.leader) {
      this.requestFlush(message.id)
    } else if (message.type === 'flushed') {
      const local = this.flushes.get(message.id)
      this.flushes.delete(message.id)
      if (message.error) local?.reject(new SyncError(message.error, undefined, true))
      else local?.resolve()
    } else if (message.type === 'pause' && this.status.leader) {
      this.pause()
    } else if (message.type === 'resume' && this.status.leader) {
      this.resume()
    }
  }

  private setStatus(change: Partial<SyncStatus>): void {
    const next = { ...this.status, ...change }
    const keys = Object.keys(next) as Array<keyof SyncStatus>
    if (keys.every((key) => next[key] === this.status[key])) return
    this.status = next
    this.listeners.forEach((listener) => listener())
    if (this.status.leader) this.broadcast()
  }

  private broadcast(): void {
    this.channel?.postMessage({ type: 'status', status: this.status } satisfies Message)
  }

  private report(error: SyncError): void {
    if (this.errorHandlers.size === 0) console.warn(`[changecast] ${error.message}`)
    this.errorHandlers.forEach((handler) => handler(error))
  }

  private emitRejected(rejection: SyncRejection): void {
    if (this.rejectionHandlers.size === 0)
      console.warn(`[changecast] The server rejected rev ${rejection.rev}: ${rejection.reason}`)
    this.rejectionHandlers.forEach((handler) => handler(rejection))
  }
}

function toPushBatch(row: LogRow): PushBatch {
  return {
    rev: row.rev,
    tx: row.tx,
    at: row.at,
    changes: row.changes.map(({ type, table, key, value, changes }) => {
      const change: WireChange = { type, table, key }
      if (value !== undefined) change.value = value
      if (changes !== undefined) change.changes = changes
      return change
    }),
  }
}

function toSyncError(error: unknown): SyncError {
  if (error instanceof SyncError) return error
  if (error instanceof SyncRequestError) {
    return new SyncError(error.message, error.status, error.retryable, { cause: error })
  }
  if (error instanceof ProtocolViolation || error instanceof SyntaxError) {
    return new SyncError(error.message, undefined, true, { cause: error })
  }
  return new SyncError(`Sync failed: ${String(error)}`, undefined, true, { cause: error })
}
