import { SyncError } from '../errors.js'
import type { SyncStatus } from '../sync-port.js'
import { Alarm, isHard, type Wake } from './alarm.js'
import { backoffDelay } from './backoff.js'
import { closedError, syncError, type SyncContext } from './context.js'
import { RequestFailure } from './http.js'
import { toErrorInfo } from './channel.js'
import { countInbox } from './inbox.js'
import { ProtocolViolation } from './protocol.js'
import { Rebind } from './principal.js'
import { ensureSnapshot, pullAll } from './pull.js'
import { pushRound } from './push.js'

/** What the loop needs from the controller. */
export interface LoopHost {
  isPaused(): boolean
  setStatus(change: Partial<SyncStatus>): void
  report(error: SyncError): void
  /** Ids of the flush requests waiting now. */
  flushes(): string[]
  /** Ends flush requests after a round: `error` undefined means the round succeeded. */
  settle(ids: string[], error?: SyncError): void
}

/** How often `headers()` is asked for new credentials while the server refuses the last ones. */
export const CREDENTIALS_POLL_MS = 1000

const online = (): boolean => typeof navigator !== 'object' || navigator.onLine !== false

/** The error of a request made while sync is paused. */
export const pausedError = () => syncError('Sync is paused: call resume() first.', 'paused')

/**
 * The leader's loop: rounds of push-then-pull, woken by local commits, pokes, `flush()` and
 * the network; backoff with full jitter after a failure (never shorter than the server's
 * `Retry-After`, never cut short by a commit or a poke); a stream of remote batches beside it.
 */
export class SyncLoop {
  readonly #alarm = new Alarm()
  #pullWanted = true
  #halted = false
  #streaming = false
  #stream: AbortController | undefined
  /** What stopped the stream and must stop the loop (refused credentials, another principal, held writes). */
  #fromStream: Error | undefined
  /** Credentials refused since the last successful round. */
  #refusals = 0

  readonly #ctx: SyncContext
  readonly #host: LoopHost

  constructor(ctx: SyncContext, host: LoopHost) {
    this.#ctx = ctx
    this.#host = host
  }

  wake(kind: Wake): void {
    if (kind === 'flush' || kind === 'resume') {
      this.#halted = false
      this.#pullWanted = true
    }
    if (kind === 'command' && this.#host.isPaused()) this.#stream?.abort()
    this.#alarm.ring(kind)
  }

  /**
   * Runs until the session ends. Returns the principal whose held writes must come back
   * first (see `principal.ts`), if that is why it ended. `waitFor`: after a sign-out, the
   * headers that were the last user's: nothing is sent until `headers()` returns others.
   */
  async run(waitFor?: string): Promise<string | undefined> {
    const ctx = this.#ctx
    const host = this.#host
    const { signal, options } = ctx
    if (waitFor !== undefined) {
      host.setStatus({ state: 'signed-out' })
      await this.#newCredentials(waitFor, false)
    }
    let attempt = 0
    while (!signal.aborted) {
      // A flush asked for while a round was failing: it wants another round.
      if (this.#halted && host.flushes().length > 0) this.#halted = false
      if (host.isPaused()) {
        host.settle(host.flushes(), pausedError())
      }
      // Stopped: no requests, but the outbox count follows local commits (any wake-up recounts).
      if (host.isPaused() || this.#halted) {
        this.#stream?.abort()
        host.setStatus({ state: this.#halted ? 'error' : 'idle' })
        await this.count()
        await this.#alarm.wait(undefined, () => true, signal)
        continue
      }
      if (!online()) {
        host.setStatus({ state: 'offline' })
        host.settle(host.flushes(), syncError('The browser is offline.', 'offline', undefined, true))
        await this.count()
        await this.#alarm.wait(undefined, () => true, signal)
        continue
      }
      const flushing = host.flushes()
      try {
        if (this.#fromStream) {
          const failure = this.#fromStream
          this.#fromStream = undefined
          throw failure
        }
        this.#startStream()
        await this.count()
        if (options.pull !== false) await ensureSnapshot(ctx, () => host.setStatus({ state: 'pulling' }))
        await options.users?.probe(ctx)
        // At most 8 pushes before a pull: an app that never stops writing still hears the server.
        let pushes = 0
        while ((await pushRound(ctx, () => host.setStatus({ state: 'pushing' }))) && ++pushes < 8);
        if (options.pull !== false && (this.#pullWanted || flushing.length > 0 || options.pull === 'poll')) {
          this.#pullWanted = false
          host.setStatus({ state: 'pulling' })
          await pullAll(ctx)
        }
        attempt = 0
        this.#refusals = 0
        // More to push: on with it before flushes settle.
        if (pushes > 7) continue
        await this.count()
        host.settle(flushing)
        // The stream may have stopped the sync meanwhile (a 401): the top of the loop shows it.
        if (this.#halted) continue
        // A round that needed no request says nothing of the server: the stream's last attempt does.
        host.setStatus(ctx.unreachable ? { state: 'offline' } : { state: 'idle', lastError: undefined })
        if (host.flushes().length === 0 && !this.#pullWanted) {
          await this.#alarm.wait(options.pull === 'poll' ? options.interval : undefined, () => true, signal)
        }
      } catch (error) {
        if (signal.aborted) return
        if (error instanceof Rebind) return error.principal
        const failure = toSyncError(error)
        // Paused in the middle of a round: not a problem to report; the top of the loop waits.
        if (failure.reason === 'paused') {
          host.settle(flushing, failure)
          continue
        }
        host.report(failure)
        host.settle(flushing, failure)
        // Waits for other credentials (or resume()): the same ones would be refused again.
        if (failure.reason === 'unauthorized' || failure.reason === 'principal-changed') {
          this.#stream?.abort()
          host.setStatus({ state: failure.reason, lastError: toErrorInfo(failure) })
          const refused = ctx.refused ?? (await ctx.headers().then(JSON.stringify, () => ''))
          await this.#newCredentials(refused, failure.reason === 'unauthorized')
          continue
        }
        host.setStatus({ state: failure.retrying ? 'offline' : 'error', lastError: toErrorInfo(failure) })
        if (!failure.retrying) {
          this.#halted = true
          continue
        }
        const retryAfter = failure instanceof RequestFailure ? (failure.retryAfter ?? 0) : 0
        const delay = Math.max(retryAfter, backoffDelay(++attempt, options.backoff))
        await this.#alarm.wait(delay, isHard, signal, Date.now() + retryAfter)
      }
    }
  }

  /**
   * Waits until the app's `headers()` (asked about once a second: a local call) return
   * something else than `refused`, or for `resume()` or `flush()`. `backOff`: credentials
   * refused again and again (401) are then tried less and less often, until a round succeeds.
   */
  async #newCredentials(refused: string, backOff: boolean): Promise<void> {
    const { signal, options } = this.#ctx
    const attempt = backOff ? ++this.#refusals : 0
    const asked = (kind: Wake) => kind === 'resume' || kind === 'flush'
    for (let woken = false; !woken && !signal.aborted;) {
      await this.#alarm.wait(CREDENTIALS_POLL_MS, (kind) => (woken = asked(kind)), signal)
      if (!woken && (await this.#ctx.headers().then(JSON.stringify, () => refused)) !== refused) break
    }
    if (attempt > 1) await this.#alarm.wait(backoffDelay(attempt - 1, options.backoff), asked, signal)
  }

  /** Recounts the outbox, set-aside items and rejections for the status. */
  async count(): Promise<void> {
    this.#host.setStatus(await countInbox(this.#ctx.db, this.#ctx.pending))
  }

  #stopped(): boolean {
    return this.#ctx.signal.aborted || this.#host.isPaused() || this.#halted
  }

  #startStream(): void {
    const { pull } = this.#ctx.options
    if (typeof pull !== 'object' || this.#streaming || this.#stopped()) return
    this.#streaming = true
    void pull
      .run(this.#ctx, this.#host, {
        alarm: this.#alarm,
        stopped: () => this.#stopped(),
        open: (stop) => (this.#stream = stop),
        poke: (stopWith) => {
          this.#fromStream = stopWith
          this.#pullWanted = true
          this.#alarm.ring('poke')
        },
        halt: () => (this.#halted = true),
      })
      .finally(() => {
        this.#streaming = false
      })
  }
}

/** What a live transport (see `stream.ts`) may do to the loop it runs beside. */
export interface StreamControl {
  readonly alarm: Alarm
  /** True once the loop stopped (the session ended, paused, or halted by an error). */
  stopped(): boolean
  /** The controller that ends the current connection (on pause, or when the loop halts). */
  open(stop: AbortController): void
  /** Asks the loop for a pull; `stopWith`: a failure that must stop the loop (refused credentials…). */
  poke(stopWith?: Error): void
  /** Stops the loop until `flush()` or `resume()` (an error it cannot retry). */
  halt(): void
}

/** Any failure as a {@link SyncError}. */
export function toSyncError(error: unknown): SyncError {
  if (error instanceof SyncError) return error
  if (error instanceof ProtocolViolation) {
    return new SyncError(error.message, { reason: 'protocol', retrying: true, cause: error })
  }
  const name = (error as Error | undefined)?.name
  if (name === 'DatabaseClosedError') {
    return closedError()
  }
  return new SyncError(`Sync failed: ${String(error)}`, { reason: 'protocol', retrying: true, cause: error })
}
