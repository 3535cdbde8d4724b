import { InvalidOptionsError, type SyncError } from '../errors.js'
import type { SetAsideItem, SyncHost, SyncReceipt, SyncRejection, SyncSession, SyncStatus } from '../sync-port.js'
import type { Unsubscribe } from '../types.js'
import { Listeners } from '../util/listeners.js'
import { closedError } from './context.js'
import { fromErrorInfo, toErrorInfo, type Request } from './channel.js'
import { listRejections, listSetAside, newestLocalRev, receiptOf } from './inbox.js'
import { Leadership } from './leadership.js'
import { partMissing, type ResolvedOptions } from './options.js'
import { syncTable } from './store.js'
import { TabRelay } from './tab-relay.js'

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

/**
 * `feed.sync` in every context. The context holding the database's sync lock leads (see
 * {@link Leadership}); the others show its status, forward their requests to it and hear its
 * errors and rejections through the {@link TabRelay}.
 */
export class SyncClient implements SyncSession {
  status: SyncStatus = initialStatus
  readonly #listeners = new Listeners<void>()
  readonly #errors = new Listeners<SyncError>()
  readonly #rejectionHandlers = new Listeners<SyncRejection>()
  readonly #relay: TabRelay
  readonly #leadership: Leadership
  readonly #cleanups: Array<() => void> = []
  readonly #waiters = new Set<() => void>()
  #closed = false
  /** A retried failure was shown on the console, and the server has not answered since. */
  #outage = false

  readonly #host: SyncHost
  readonly #options: ResolvedOptions

  constructor(host: SyncHost, options: ResolvedOptions) {
    this.#host = host
    this.#options = options
    const { db, origin } = host
    const leadership = (this.#leadership = new Leadership(
      host,
      options,
      {
        isPaused: () => this.status.paused,
        state: () => this.status.state,
        setStatus: (change) => this.#setStatus(change),
        report: (error) => this.#report(error),
        rejected: (rejection) => this.#rejected(rejection),
      },
      () => this.#relay.lead(),
    ))
    this.#relay = new TabRelay(db.name, {
      origin,
      leading: () => leadership.leading,
      run: (request, id, reply) => leadership.run(request, id, reply),
      statusFromLeader: (status) => {
        if (db.isOpen()) this.#setStatus({ ...status, leader: false }, false)
      },
      heard: (message) => {
        if (message.type === 'rejected') this.#rejectionHandlers.emit(message.rejection)
        else if (message.type === 'error') this.#errors.emit(fromErrorInfo(message.error))
        else leadership.count()
        this.#wakeWaiters()
      },
      control: (type) => (type === 'pause' ? this.pause() : this.resume()),
      status: () => this.status,
    })
    this.#cleanups.push(host.onBatch((batch) => batch.source !== 'remote' && leadership.wake('commit')))
    if (typeof addEventListener === 'function') {
      const network = () => leadership.wake('online')
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
      throw new InvalidOptionsError(`settled(rev): rev must be a positive integer, got ${String(rev)}.`)
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
    if (!this.#leadership.leading) this.#relay.post({ type: 'pause', from: this.#host.origin })
    this.#setStatus({ paused: true })
    this.#leadership.wake('command')
  }

  resume(): void {
    if (!this.#leadership.leading) this.#relay.post({ type: 'resume', from: this.#host.origin })
    this.#setStatus({ paused: false })
    this.#leadership.wake('resume')
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
    this.#leadership.count()
    this.#relay.post({ type: 'inbox', from: this.#host.origin })
    this.#wakeWaiters()
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

  signOut({ discardPending = false }: { discardPending?: boolean } = {}): Promise<void> {
    if (typeof discardPending !== 'boolean') {
      return Promise.reject(new InvalidOptionsError('signOut(): discardPending must be a boolean.'))
    }
    return this.#ask({ name: 'signOut', discard: discardPending })
  }

  discardPending(): Promise<void> {
    return this.#ask({ name: 'discardPending' })
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
    this.#relay.close()
    this.#listeners.clear()
    this.#errors.clear()
    this.#rejectionHandlers.clear()
  }

  #opened(): void {
    if (this.#closed || !this.#host.db.isOpen()) return
    this.#setStatus({ state: 'idle' })
    this.#relay.hello()
    this.#leadership.start()
  }

  /** The database closed (or the feed): stop leading, end this context's requests. */
  #shut(): void {
    this.#leadership.stop()
    this.#relay.leave(closedError())
    this.#setStatus({ state: 'closed', leader: false })
  }

  #ask(request: Request): Promise<void> {
    const { db } = this.#host
    const missing = partMissing(request.name, this.#options)
    if (missing) return Promise.reject(missing)
    if (this.#closed || (!db.isOpen() && db.hasFailed())) return Promise.reject(closedError())
    // Before the database opens, the request waits for the leader it will have.
    return this.#relay.ask(request)
  }

  #report(error: SyncError): void {
    // One console line per outage: a failure retried again and again is shown once until the server answers.
    if (this.#errors.size === 0 && !(error.retrying && this.#outage)) console.warn(`[changecast] ${error.message}`)
    this.#outage = error.retrying
    this.#errors.emit(error)
    this.#relay.post({ type: 'error', error: toErrorInfo(error) })
  }

  #rejected(rejection: SyncRejection): void {
    if (this.#rejectionHandlers.size === 0)
      console.warn(`[changecast] The server rejected rev ${rejection.rev}: ${rejection.reason}`)
    this.#rejectionHandlers.emit(rejection)
    this.#relay.post({ type: 'rejected', rejection })
    this.#wakeWaiters()
  }

  #setStatus(change: Partial<SyncStatus>, broadcast = true): void {
    if (change.lastContactAt) this.#outage = false
    const next = { ...this.status, ...change }
    if ((Object.keys(next) as Array<keyof SyncStatus>).every((key) => next[key] === this.status[key])) return
    this.status = next
    this.#listeners.emit()
    this.#wakeWaiters()
    if (broadcast && this.#leadership.leading)
      this.#relay.post({ type: 'status', from: this.#host.origin, status: next })
  }

  #wakeWaiters(): void {
    for (const waiter of [...this.#waiters]) waiter()
    this.#waiters.clear()
  }
}
