import type { SyncError } from '../errors.js'
import type { SyncHost, SyncRejection, SyncStatus } from '../sync-port.js'
import { summary } from './apply-batch.js'
import type { Request } from './channel.js'
import type { SyncContext } from './context.js'
import { electLeader } from './leader.js'
import type { Wake } from './alarm.js'
import { pausedError, SyncLoop, toSyncError } from './loop.js'
import { partMissing } from './options.js'
import type { ResolvedOptions } from './options.js'
import { idsOf, PendingKeys } from './pending.js'
import { loadState, rowsOf, type AsideRow, type HeldRow } from './store.js'

/** What leading needs from the controller of its context. */
export interface LeadershipHost {
  isPaused(): boolean
  state(): SyncStatus['state']
  setStatus(change: Partial<SyncStatus>): void
  report(error: SyncError): void
  rejected(rejection: SyncRejection): void
}

/**
 * This context's part in leading: it asks for the database's sync lock while the database
 * is open, and while it holds it runs the {@link SyncLoop}, counts the status figures, and
 * takes the requests of every context (flushes wait for the next round; retries and drops
 * run at once).
 */
export class Leadership {
  #loop: SyncLoop | undefined
  #ctx: SyncContext | undefined
  #stop: (() => void) | undefined
  /** Flush requests of any context, until a round answers them. */
  readonly #flushes = new Map<string, { reply: (error?: SyncError) => void; attempts: number }>()
  /** Sign-outs asked for: each runs once the session ends. */
  readonly #tasks: Array<{ discard: boolean; reply: (error?: SyncError) => void }> = []
  #session: AbortController | undefined
  #recount: Promise<void> | undefined
  #recountAgain = false

  readonly #host: SyncHost
  readonly #options: ResolvedOptions
  readonly #controller: LeadershipHost
  /** Called when this context starts leading. */
  readonly #onLead: () => void

  constructor(host: SyncHost, options: ResolvedOptions, controller: LeadershipHost, onLead: () => void) {
    this.#host = host
    this.#options = options
    this.#controller = controller
    this.#onLead = onLead
  }

  /** True while this context leads. */
  get leading(): boolean {
    return this.#loop !== undefined
  }

  /** Asks for the lock (the database opened). */
  start(): void {
    this.#stop ??= electLeader(`changecast-sync:${this.#host.db.name}`, (signal) => this.#lead(signal))
  }

  /** Stops leading, or waiting to (the database closed). */
  stop(): void {
    this.#stop?.()
    this.#stop = undefined
  }

  wake(kind: Wake): void {
    this.#loop?.wake(kind)
  }

  /** In the leader: takes a request of any context. */
  run(request: Request, id: string, reply: (error?: SyncError) => void): void {
    const loop = this.#loop
    const ctx = this.#ctx
    if (!loop || !ctx) return
    if (request.name === 'flush') {
      if (!this.#flushes.has(id)) this.#flushes.set(id, { reply, attempts: request.attempts })
      loop.wake('flush')
      return
    }
    const { users, setAside } = this.#options
    // Asked by a context whose sync has the part this one lacks.
    const missing = partMissing(request.name, this.#options)
    if (missing) return reply(toSyncError(missing))
    if (request.name === 'signOut') {
      // The session ends first: nothing it sends may mix the two users.
      this.#tasks.push({ discard: request.discard, reply })
      return this.#session?.abort()
    }
    ctx
      .exclusive(() =>
        request.name === 'discardPending'
          ? users!.discardPending(ctx)
          : setAside!.run(ctx, request.name, request.kind, request.rev),
      )
      .then(
        () => {
          loop.wake('command')
          reply()
        },
        (error: unknown) => reply(toSyncError(error)),
      )
  }

  /** Recounts the status figures, coalescing calls that come while a count runs. */
  count(): void {
    if (!this.#loop) return
    if (this.#recount) {
      this.#recountAgain = true
      return
    }
    this.#recount = this.#counted().finally(() => {
      this.#recount = undefined
      if (this.#recountAgain) {
        this.#recountAgain = false
        this.count()
      }
    })
  }

  async #counted(): Promise<void> {
    if (!this.#loop || !this.#host.db.isOpen()) return
    try {
      await this.#loop.count()
    } catch {
      // The database closed meanwhile: the next leader counts again.
    }
  }

  /** The round that `ids` waited for ended. A retryable failure is retried while attempts last. */
  #settle(ids: string[], error?: SyncError): void {
    for (const id of ids) {
      const entry = this.#flushes.get(id)
      if (!entry) continue
      if (error?.retrying && error.reason !== 'offline' && --entry.attempts > 0) continue
      this.#flushes.delete(id)
      entry.reply(error)
    }
  }

  /**
   * Leads while the lock is held, in sessions: a sign-out, or a principal whose held writes
   * come back, ends a session; the task runs between two (no request in flight), and the
   * next session starts from what it left in the database.
   */
  async #lead(signal: AbortSignal): Promise<void> {
    const controller = this.#controller
    let waitFor: string | undefined
    let accepted: string | undefined
    const answered: Array<() => void> = []
    try {
      while (!signal.aborted) {
        const session = (this.#session = new AbortController())
        const end = () => session.abort()
        signal.addEventListener('abort', end)
        if (this.#tasks.length > 0) end()
        const ctx = await leaderContext(this.#host, this.#options, session.signal, controller, () => this.count())
        // The credentials the server last accepted, across sessions (see the sign-out below).
        ctx.accepted = accepted
        const loop = new SyncLoop(ctx, {
          ...controller,
          flushes: () => [...this.#flushes.keys()],
          settle: (ids, error) => this.#settle(ids, error),
        })
        this.#ctx = ctx
        const first = !this.#loop
        this.#loop = loop
        if (first) {
          controller.setStatus({ leader: true, state: 'idle' })
          this.#onLead()
        }
        let rebind: string | undefined
        try {
          await this.#counted()
          // Sign-outs end once the status shows the new start.
          for (const reply of answered.splice(0)) reply()
          rebind = await loop.run(waitFor)
        } finally {
          signal.removeEventListener('abort', end)
        }
        // What the session started on the database ends before a task runs.
        await ctx.exclusive(async () => {}).catch(() => undefined)
        if (signal.aborted) return
        accepted = ctx.accepted
        waitFor = await this.#options.users?.between(ctx, rebind, this.#tasks.splice(0), answered, (change) =>
          controller.setStatus(change),
        )
      }
    } finally {
      // Unanswered sign-outs go to the next leader (the relay asks it again).
      this.#tasks.length = 0
      this.#loop = undefined
      this.#ctx = undefined
      this.#flushes.clear()
      controller.setStatus({ leader: false })
    }
  }
}

/**
 * The leader's {@link SyncContext}: the stored position, the entities with unanswered local
 * writes (the outbox and set-aside commits), and set-aside server batches.
 */
async function leaderContext(
  host: SyncHost,
  options: ResolvedOptions,
  signal: AbortSignal,
  controller: LeadershipHost,
  changed: () => void,
): Promise<SyncContext> {
  const { db } = host
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
  // Writes held for a principal the server never named stay until discardPending().
  const held = new Set(
    options.users ? (await rowsOf<HeldRow>(db, 'held')).map((row) => row.principal).filter(Boolean) : [],
  )
  let chain: Promise<unknown> = Promise.resolve()
  let contacted = 0
  let lost = false
  return {
    db,
    host,
    options,
    signal,
    checkPaused: () => {
      if (controller.isPaused()) throw pausedError()
    },
    clientId: state.clientId,
    pending,
    asideApply,
    // Nothing runs once the session ended: what comes after it (a sign-out) must not mix with it.
    exclusive: <T>(task: () => Promise<T>): Promise<T> => {
      const run = chain.then(() => (signal.aborted ? Promise.reject(signal.reason as Error) : task()))
      chain = run.catch(() => undefined)
      return run
    },
    headers: async () => {
      const { headers } = options
      return typeof headers === 'function' ? await headers() : (headers ?? {})
    },
    contact: (ok) => {
      // A success is recorded at once after a failure, else at most once a second (the
      // status is a new object each time it changes).
      const now = Date.now()
      if (!ok || (!lost && now - contacted < 1000)) return void (lost ||= !ok)
      contacted = now
      lost = false
      controller.setStatus(
        controller.state() === 'offline' ? { lastContactAt: now, state: 'idle' } : { lastContactAt: now },
      )
    },
    report: (error) => controller.report(error),
    rejected: (rejection) => controller.rejected(rejection),
    changed,
    bootstrapping: false,
    resetAt: 0,
    held,
    probed: false,
    progress: (loaded, total) =>
      controller.setStatus({ phase: loaded === undefined ? undefined : 'bootstrap', loaded, total }),
  }
}
