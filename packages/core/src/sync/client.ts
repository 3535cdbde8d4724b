import { InvalidOptionsError, SyncError } from '../errors.js'
import type { SetAsideItem, SyncHost, SyncReceipt, SyncRejection, SyncSession, SyncStatus } from '../sync-port.js'
import type { Unsubscribe } from '../types.js'
import { Listeners } from '../util/listeners.js'
import { randomId } from '../util/random-id.js'
import { summary } from './apply-batch.js'
import { fromErrorInfo, parseMessage, toErrorInfo, type Message, type Request } from './channel.js'
import type { SyncContext } from './context.js'
import { listRejections, listSetAside, newestLocalRev, receiptOf, runCommand } from './inbox.js'
import { electLeader } from './leader.js'
import { SyncLoop, toSyncError } from './loop.js'
import type { ResolvedOptions } from './options.js'
import { idsOf, PendingKeys } from './pending.js'
import { loadState, rowsOf, syncTable, type AsideRow } from './store.js'
import { unref } from '../transport/tab-channel.js'

const initialStatus: SyncStatus = {
  state: 'closed',
  outbox: 0,
  setAside: 0,
  rejections: 0,
  lastSyncedRev: 0,
  serverRev: 0,
  leader: false,
  paused: false,
}

const pausedError = () => new SyncError('Sync is paused: call resume() first.', { reason: 'paused', retrying: false })
const closedError = () =>
  new SyncError('The database is closed: sync resumes when it opens.', { reason: 'closed', retrying: false })

/**
 * `feed.sync` in every context. The context holding the database's sync lock runs the
 * {@link SyncLoop}; the others show its status (over a BroadcastChannel), forward
 * `flush()`, `pause()`, `resume()`, retries and drops to it (again to the next leader
 * after a hand-over), and hear its errors and rejections.
 */
export class SyncClient implements SyncSession {
  status: SyncStatus = initialStatus
  readonly #listeners = new Listeners<void>()
  readonly #errors = new Listeners<SyncError>()
  readonly #rejectionHandlers = new Listeners<SyncRejection>()
  readonly #channel: BroadcastChannel | undefined
  readonly #cleanups: Array<() => void> = []
  /** This context's own requests, until answered. */
  readonly #mine = new Map<string, { request: Request; resolve(): void; reject(error: Error): void }>()
  /** The leader's flush requests, from any context. */
  readonly #flushRequests = new Map<string, { from: string; attempts: number }>()
  readonly #waiters = new Set<() => void>()
  #loop: SyncLoop | undefined
  #ctx: SyncContext | undefined
  #leaderId: string | undefined
  #stopLeading: (() => void) | undefined
  #recount: Promise<void> | undefined
  #recountAgain = false
  #closed = false

  readonly #host: SyncHost
  readonly #options: ResolvedOptions

  constructor(host: SyncHost, options: ResolvedOptions) {
    this.#host = host
    this.#options = options
    const { db } = host
    if (typeof BroadcastChannel === 'function') {
      const channel = (this.#channel = new BroadcastChannel(`changecast-sync:${db.name}`))
      unref(channel)
      channel.onmessage = (event: MessageEvent) => this.#onMessage(parseMessage(event.data))
    }
    this.#cleanups.push(host.onBatch((batch) => batch.source !== 'remote' && this.#loop?.wake('commit')))
    if (typeof addEventListener === 'function') {
      const network = () => this.#loop?.wake('online')
      const remove = removeEventListener
      addEventListener('online', network)
      addEventListener('offline', network)
      this.#cleanups.push(() => {
        remove('online', network)
        remove('offline', network)
      })
    }
    // The sync runs while the database is open: it stops on close and starts again on every open.
    const ready = () => void setTimeout(() => this.#opened(), 0)
    const close = () => this.#shut()
    db.on('ready', ready, true)
    db.on('close', close)
    this.#cleanups.push(() => {
      db.on('ready').unsubscribe(ready)
      db.on('close').unsubscribe(close)
    })
  }

  // ---- controller -------------------------------------------------------------------

  subscribe(listener: () => void): Unsubscribe {
    return this.#listeners.add(listener)
  }

  getSnapshot = (): SyncStatus => this.status

  flush({ attempts = 5 }: { attempts?: number } = {}): Promise<void> {
    if (!Number.isInteger(attempts) || attempts < 1) {
      return Promise.reject(new InvalidOptionsError('flush({ attempts }): attempts must be a positive integer.'))
    }
    return this.#ask({ name: 'flush', attempts })
  }

  async settled(rev?: number): Promise<SyncReceipt> {
    if (rev !== undefined && (!Number.isSafeInteger(rev) || rev < 1)) {
      throw new InvalidOptionsError(
        `settled(rev): rev must be a changelog rev (a positive integer), got ${String(rev)}.`,
      )
    }
    const { db } = this.#host
    const target = rev ?? (await newestLocalRev(db))
    if (target === 0) return { rev: 0, status: 'acked' }
    for (;;) {
      if (this.#closed) throw closedError()
      let woken = false
      const next = new Promise<void>((resolve) =>
        this.#waiters.add(() => {
          woken = true
          resolve()
        }),
      )
      const receipt = await receiptOf(db, target)
      if (receipt) return receipt
      if (!woken) await next
    }
  }

  pause(): void {
    if (!this.#loop) this.#post({ type: 'pause', from: this.#host.origin })
    this.#setStatus({ paused: true })
    this.#loop?.wake('command')
  }

  resume(): void {
    if (!this.#loop) this.#post({ type: 'resume', from: this.#host.origin })
    this.#setStatus({ paused: false })
    this.#loop?.wake('resume')
  }

  onError(handler: (error: SyncError) => void): Unsubscribe {
    return this.#errors.add(handler)
  }

  onRejected(handler: (rejection: SyncRejection) => void): Unsubscribe {
    return this.#rejectionHandlers.add(handler)
  }

  rejections(): Promise<SyncRejection[]> {
    return listRejections(this.#host.db)
  }

  async dismiss(rev: number): Promise<void> {
    await syncTable(this.#host.db).delete(['rejection', rev])
    this.#inboxChanged()
  }

  setAside(): Promise<SetAsideItem[]> {
    return listSetAside(this.#host.db)
  }

  retry({ kind, rev }: Pick<SetAsideItem, 'kind' | 'rev'>): Promise<void> {
    return this.#ask({ name: 'retry', kind, rev })
  }

  drop({ kind, rev }: Pick<SetAsideItem, 'kind' | 'rev'>): Promise<void> {
    return this.#ask({ name: 'drop', kind, rev })
  }

  async keepFrom(): Promise<number> {
    const state = await syncTable(this.#host.db).get('state')
    return ((state as { pushedUpTo?: number } | undefined)?.pushedUpTo ?? 0) + 1
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#shut()
    this.#cleanups.forEach((cleanup) => cleanup())
    this.#channel?.close()
    this.#listeners.clear()
    this.#errors.clear()
    this.#rejectionHandlers.clear()
  }

  // ---- lifecycle and leading --------------------------------------------------------

  #opened(): void {
    if (this.#closed || this.#stopLeading || !this.#host.db.isOpen()) return
    this.#setStatus({ state: 'idle' })
    this.#post({ type: 'hello', from: this.#host.origin })
    this.#stopLeading = electLeader(`changecast-sync:${this.#host.db.name}`, (signal) => this.#lead(signal))
  }

  /** The database closed (or the feed): stop leading, end this context's requests. */
  #shut(): void {
    this.#stopLeading?.()
    this.#stopLeading = undefined
    this.#leaderId = undefined
    for (const [id] of this.#mine) this.#answer(id, closedError())
    this.#setStatus({ state: 'closed', leader: false })
  }

  async #lead(signal: AbortSignal): Promise<void> {
    const { db } = this.#host
    const state = await loadState(db)
    const pending = new PendingKeys(state.pushedUpTo)
    const asideApply = new Map<number, string[]>()
    for (const row of await rowsOf<AsideRow>(db, 'aside')) {
      if (row.kind === 'push' && row.row && Array.isArray(row.row.changes)) pending.add(row.rev, idsOf(row.row))
      if (row.kind === 'apply' && row.batch) {
        const superseded = new Set(row.superseded)
        asideApply.set(
          row.rev,
          summary(row.batch)
            .map((change) => change.id)
            .filter((id) => !superseded.has(id)),
        )
      }
    }
    let chain: Promise<unknown> = Promise.resolve()
    const ctx: SyncContext = (this.#ctx = {
      db,
      host: this.#host,
      options: this.#options,
      signal,
      checkPaused: () => {
        if (this.status.paused) throw pausedError()
      },
      clientId: state.clientId,
      pending,
      asideApply,
      exclusive: <T>(task: () => Promise<T>): Promise<T> => {
        const run = chain.then(task)
        chain = run.catch(() => undefined)
        return run
      },
      headers: async () => {
        const { headers } = this.#options
        return typeof headers === 'function' ? await headers() : (headers ?? {})
      },
      report: (error) => this.#report(error),
      rejected: (rejection) => this.#rejected(rejection),
      changed: () => this.#count(),
      bootstrapping: false,
      progress: (loaded, total) =>
        this.#setStatus(
          loaded === undefined ? { phase: undefined, loaded, total } : { phase: 'bootstrap', loaded, total },
        ),
    })
    const loop = (this.#loop = new SyncLoop(ctx, {
      isPaused: () => this.status.paused,
      setStatus: (change) => this.#setStatus(change),
      report: (error) => this.#report(error),
      flushes: () => [...this.#flushRequests.keys()],
      settle: (ids, error) => this.#settle(ids, error),
    }))
    this.#leaderId = this.#host.origin
    this.#setStatus({ leader: true, state: 'idle' })
    for (const [id, { request }] of this.#mine) this.#accept(id, this.#host.origin, request)
    try {
      await this.#counted()
      await loop.run()
    } finally {
      if (this.#loop === loop) {
        this.#loop = undefined
        this.#ctx = undefined
        this.#flushRequests.clear()
        this.#setStatus({ leader: false })
      }
    }
  }

  /** Recounts the status figures, coalescing calls that come while a count runs. */
  #count(): void {
    if (this.#recount) {
      this.#recountAgain = true
      return
    }
    this.#recount = this.#counted().finally(() => {
      this.#recount = undefined
      if (this.#recountAgain) {
        this.#recountAgain = false
        this.#count()
      }
    })
  }

  async #counted(): Promise<void> {
    const { db } = this.#host
    if (!this.#loop || !db.isOpen()) return
    try {
      await this.#loop.count()
    } catch {
      // The database closed meanwhile: the next leader counts again.
    }
  }

  // ---- requests to the leader ---------------------------------------------------------

  #ask(request: Request): Promise<void> {
    if (this.#closed || !this.#host.db.isOpen()) return Promise.reject(closedError())
    const id = randomId()
    return new Promise((resolve, reject) => {
      this.#mine.set(id, { request, resolve, reject })
      if (this.#loop) this.#accept(id, this.#host.origin, request)
      else this.#post({ type: 'request', from: this.#host.origin, id, request })
    })
  }

  /** In the leader: takes a request from this or another context. */
  #accept(id: string, from: string, request: Request): void {
    const loop = this.#loop
    const ctx = this.#ctx
    if (!loop || !ctx) return
    if (request.name === 'flush') {
      if (!this.#flushRequests.has(id)) this.#flushRequests.set(id, { from, attempts: request.attempts })
      loop.wake('flush')
      return
    }
    ctx
      .exclusive(() => runCommand(ctx, request.name, request.kind, request.rev))
      .then(
        () => {
          loop.wake('command')
          this.#reply(from, id)
        },
        (error: unknown) => this.#reply(from, id, toSyncError(error)),
      )
  }

  /** In the leader: the round that `ids` waited for ended. A retryable failure is retried while attempts last. */
  #settle(ids: string[], error?: SyncError): void {
    for (const id of ids) {
      const entry = this.#flushRequests.get(id)
      if (!entry) continue
      if (error?.retrying && error.reason !== 'offline' && --entry.attempts > 0) continue
      this.#flushRequests.delete(id)
      this.#reply(entry.from, id, error)
    }
  }

  #reply(to: string, id: string, error?: SyncError): void {
    if (to === this.#host.origin) this.#answer(id, error)
    else this.#post(error ? { type: 'reply', to, id, error: toErrorInfo(error) } : { type: 'reply', to, id })
  }

  #answer(id: string, error?: Error): void {
    const entry = this.#mine.get(id)
    if (!entry) return
    this.#mine.delete(id)
    if (error) entry.reject(error)
    else entry.resolve()
  }

  // ---- events -------------------------------------------------------------------------

  #report(error: SyncError): void {
    if (this.#errors.size === 0) console.warn(`[changecast] ${error.message}`)
    this.#errors.emit(error)
    this.#post({ type: 'error', error: toErrorInfo(error) })
  }

  #rejected(rejection: SyncRejection): void {
    if (this.#rejectionHandlers.size === 0)
      console.warn(`[changecast] The server rejected rev ${rejection.rev}: ${rejection.reason}`)
    this.#rejectionHandlers.emit(rejection)
    this.#post({ type: 'rejected', rejection })
    this.#wakeWaiters()
  }

  #inboxChanged(): void {
    if (this.#loop) this.#count()
    this.#post({ type: 'inbox', from: this.#host.origin })
    this.#wakeWaiters()
  }

  #onMessage(message: Message | undefined): void {
    if (!message || this.#closed) return
    switch (message.type) {
      case 'hello':
        if (this.#loop) this.#post({ type: 'status', from: this.#host.origin, status: this.status })
        break
      case 'status':
        if (this.#loop || !this.#host.db.isOpen()) break
        if (message.from !== this.#leaderId) {
          // A new leader: it does not know the requests sent to the one before.
          this.#leaderId = message.from
          for (const [id, { request }] of this.#mine)
            this.#post({ type: 'request', from: this.#host.origin, id, request })
        }
        this.#setStatus({ ...message.status, leader: false }, false)
        break
      case 'request':
        this.#accept(message.id, message.from, message.request)
        break
      case 'reply':
        if (message.to === this.#host.origin) this.#answer(message.id, message.error && fromErrorInfo(message.error))
        break
      case 'rejected':
        this.#rejectionHandlers.emit(message.rejection)
        this.#wakeWaiters()
        break
      case 'error':
        this.#errors.emit(fromErrorInfo(message.error))
        break
      case 'pause':
        if (this.#loop) this.pause()
        break
      case 'resume':
        if (this.#loop) this.resume()
        break
      case 'inbox':
        if (this.#loop) this.#count()
        this.#wakeWaiters()
    }
  }

  #setStatus(change: Partial<SyncStatus>, broadcast = true): void {
    const next = { ...this.status, ...change }
    if ((Object.keys(next) as Array<keyof SyncStatus>).every((key) => next[key] === this.status[key])) return
    this.status = next
    this.#listeners.emit()
    this.#wakeWaiters()
    if (broadcast && this.#loop) this.#post({ type: 'status', from: this.#host.origin, status: next })
  }

  #wakeWaiters(): void {
    for (const waiter of [...this.#waiters]) waiter()
    this.#waiters.clear()
  }

  #post(message: Message): void {
    try {
      this.#channel?.postMessage(message)
    } catch {
      // Closed meanwhile: the other contexts ask again (hello) when they need to.
    }
  }
}
