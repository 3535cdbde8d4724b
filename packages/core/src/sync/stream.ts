import { applyBatch } from './apply-batch.js'
import { backoffDelay } from './backoff.js'
import { toErrorInfo } from './channel.js'
import type { SyncContext } from './context.js'
import { RequestFailure } from './http.js'
import { toSyncError, type LoopHost, type StreamControl } from './loop.js'
import { Rebind } from './principal.js'
import { acknowledged, checkLog } from './principal.js'
import { send } from './http.js'
import { parseHello, parseRemoteBatch, ProtocolViolation } from './protocol.js'
import { readEvents } from './sse.js'
import { markRefetch, needsSnapshot, readState, scopeKey } from './store.js'

/** A stream that sends nothing at all (not even a heartbeat) for this long is taken for dead. */
export const STREAM_SILENCE_MS = 60_000

/**
 * Reads one stream connection until it ends: checks the server's epoch on `hello`,
 * applies `batch` events as they come, and calls `onPoke` for `poke` events. Resolves when
 * the server ends the stream (or `stop` aborts it), with `'later'` when a snapshot must load
 * first (the caller reconnects shortly); throws a request failure or a
 * {@link ProtocolViolation}. `onOpen` is called once the stream is confirmed.
 */
export async function readStream(
  ctx: SyncContext,
  stop: AbortSignal,
  { onOpen, onPoke }: { onOpen: () => void; onPoke: () => void },
): Promise<void | 'later'> {
  const abort = new AbortController()
  const end = (): void => abort.abort()
  ctx.signal.addEventListener('abort', end)
  stop.addEventListener('abort', end)
  let timer: ReturnType<typeof setTimeout> | undefined
  const alive = (): void => {
    clearTimeout(timer)
    timer = setTimeout(end, STREAM_SILENCE_MS)
  }
  try {
    const state = await readState(ctx.db)
    const { serverRev, scopes } = state
    // Before a snapshot that is due there is nothing to stream onto: the pull loads it first.
    if (needsSnapshot(state)) return later(onPoke)
    const query = `v=2&since=${serverRev}&clientId=${encodeURIComponent(ctx.clientId)}${ctx.options.scopeQuery}`
    const acked = await acknowledged(ctx)
    alive()
    const response = await send(
      ctx,
      `${ctx.options.base}/stream?${query}`,
      { headers: { accept: 'text/event-stream' } },
      abort.signal,
    )
    if (!response.body) throw new ProtocolViolation('The stream reply has no body')
    let open = false
    for await (const event of readEvents(response.body, { onChunk: alive })) {
      if (event.event === 'hello') {
        const hello = parseHello(json(event.data))
        // A new epoch resets this client's position: this connection's batches start from the old one.
        const reset = await checkLog(ctx, hello, serverRev, hello.head, acked)
        if (reset) return
        // Compacted past this position, or other scopes: the pull fetches a snapshot.
        if (scopeKey(hello.scopes) !== scopes) await markRefetch(ctx.db)
        if (hello.mustRefetch || scopeKey(hello.scopes) !== scopes) return later(onPoke)
        open = true
        onOpen()
      } else if (event.event === 'batch') {
        if (!open) throw new ProtocolViolation('A stream batch came before hello')
        const batch = parseRemoteBatch(json(event.data), 'stream event')
        // A snapshot is loading: what it does not hold yet comes in the pull after it.
        if (ctx.bootstrapping) return later(onPoke)
        // This connection reads the scopes the position had when it opened; a snapshot of
        // other scopes loaded since makes it stale.
        const stale = await ctx.exclusive(async () => {
          const now = await readState(ctx.db)
          if (now.scopes !== scopes || needsSnapshot(now)) return true
          await applyBatch(ctx, batch)
          return false
        })
        if (stale) return later(onPoke)
        ctx.changed()
      } else if (event.event === 'poke') {
        onPoke()
      }
    }
  } catch (error) {
    // Aborted by this client (pause, hand-over, silence): an ordinary end.
    if (!abort.signal.aborted) throw error
  } finally {
    clearTimeout(timer)
    ctx.signal.removeEventListener('abort', end)
    stop.removeEventListener('abort', end)
  }
}

/** Ends the stream for now: the pull has a snapshot to load first; reconnect soon after. */
function later(onPoke: () => void): 'later' {
  onPoke()
  return 'later'
}

function json(data: string): unknown {
  try {
    return JSON.parse(data) as unknown
  } catch {
    throw new ProtocolViolation(`A stream event is not JSON: ${data.slice(0, 60)}`)
  }
}

/**
 * Live updates: `httpSync({ url, pull: stream })` keeps a Server-Sent Events connection
 * open beside the sync loop, so the server's batches arrive as they are committed
 * (reconnecting with backoff, and pulling whatever a dropped connection missed). Without
 * it the client polls every `interval` ms.
 *
 * @example
 * import { httpSync, stream } from '@changecast/core/sync'
 * const feed = changecast(db, { sync: httpSync({ url, pull: stream }) })
 */
export const stream = { run: runStream }

/** What {@link stream} is. */
export type StreamTransport = typeof stream

/** Reads the stream while the loop runs, reconnecting after failures with backoff. */
async function runStream(ctx: SyncContext, host: LoopHost, loop: StreamControl): Promise<void> {
  let attempt = 0
  while (!loop.stopped()) {
    const stop = new AbortController()
    loop.open(stop)
    let notBefore = 0
    let later = false
    try {
      later =
        (await readStream(ctx, stop.signal, {
          onOpen: () => (attempt = 0),
          onPoke: () => loop.poke(),
        })) === 'later'
    } catch (error) {
      if (ctx.signal.aborted) return
      const failure = toSyncError(error)
      // Refused, or another user's: the whole sync waits for new credentials (see run()).
      if (error instanceof Rebind || failure.reason === 'unauthorized' || failure.reason === 'principal-changed') {
        return loop.poke(error as Error)
      }
      host.report(failure)
      if (!failure.retrying) {
        loop.halt()
        host.setStatus({ state: 'error', lastError: toErrorInfo(failure) })
        return loop.poke()
      }
      // The server cannot be reached: so the status says, whatever the outbox holds.
      host.setStatus({ state: 'offline', lastError: toErrorInfo(failure) })
      notBefore = Date.now() + (failure instanceof RequestFailure ? (failure.retryAfter ?? 0) : 0)
    }
    if (loop.stopped()) return
    // Whatever the stream may have missed while it was down is pulled.
    loop.poke()
    if (later) attempt = 0
    const delay = later ? 250 : Math.max(notBefore - Date.now(), backoffDelay(++attempt, ctx.options.backoff))
    await loop.alarm.wait(
      delay,
      (kind) => kind === 'online' || kind === 'resume' || kind === 'flush',
      ctx.signal,
      notBefore,
    )
  }
}
