import type { Database } from './db/port.js'
import { nextTurn } from './fairness.js'
import type { Names } from './names.js'
import { batchJson, readAfter } from './store/log.js'
import { readMeta, type StoredBatch } from './store/model.js'

const PAGE = 500
const encoder = new TextEncoder()
const HEARTBEAT = encoder.encode(': heartbeat\n\n')
/** A stream whose reader is this many bytes behind is closed: the client reconnects and catches up. */
const MAX_BACKLOG = 8 * 1024 * 1024

export interface FanoutOptions {
  /** Milliseconds between reads of the log without a notification (a safety net). @default 1500 */
  pollInterval?: number
  /** Milliseconds between heartbeats on every stream. @default 15000 */
  heartbeat?: number
}

/** One open Server-Sent Events stream. */
interface Stream {
  clientId: string
  /** The scopes it reads (sorted), or undefined for every scope. */
  scopes?: readonly string[]
  /** The same, as a set and as one text (the key of the encodings shared between streams). */
  scopeSet?: ReadonlySet<string>
  scopeKey: string
  /** Resolves false once its principal's scopes changed (asked before each delivery round): it is then closed. */
  current?: () => Promise<boolean>
  /** The newest revision this stream has been given (or skipped as its client's own). */
  position: number
  /** Caught up: new batches come from the fan-out; before that, from its own reads. */
  live: boolean
  controller: ReadableStreamDefaultController<Uint8Array>
  closed: boolean
  onClose?: () => void
  turn?: StreamOptions['turn']
  pace?: StreamOptions['pace']
}

/** What {@link Fanout.open} opens a stream with. */
export interface StreamOptions {
  clientId: string
  /** The client's position: batches after it are sent. */
  since: number
  /** The `hello` event's data; its `head` is raised to this instance's reader position when that is newer. */
  hello: Record<string, unknown>
  /** Aborted when the client goes away. */
  signal?: AbortSignal
  /** The scopes it reads (sorted), or undefined for every scope. */
  scopes?: readonly string[]
  /** Resolves false once the principal's scopes changed: the stream is then closed. */
  current?: () => Promise<boolean>
  /** Called once, when the stream ends. */
  onClose?: () => void
  /** Runs each of its catch-up reads when its principal's turn comes (see `Fairness`). @default at once */
  turn?: <T>(read: () => Promise<T>) => Promise<T>
  /** Awaited between two queries of a catch-up read (see `Fairness.pace`). @default the next turn of the event loop */
  pace?: () => Promise<void>
}

/**
 * Sends new batches to this instance's open streams. One reader per instance reads the
 * log by revision — when a commit is announced (`LISTEN`), when this instance commits,
 * and every `pollInterval` in case a notification was lost — and hands each batch, encoded
 * once, to every stream that is caught up. A new stream first reads the log itself from its
 * client's position, then joins.
 */
export class Fanout {
  readonly #db: Database
  readonly #t: Names
  readonly #options: Required<FanoutOptions>
  readonly #streams = new Set<Stream>()
  #last = 0
  #reading: Promise<void> | undefined
  #again = false
  #timers: Array<ReturnType<typeof setInterval>> = []
  #unlisten: (() => Promise<void>) | undefined
  #notifying = false
  #notifyAgain = false
  #closed = false
  /** The log's epoch when this instance started, or last saw it change. */
  #epoch = ''
  /** The poll's turn: the meta row is read too (a restore or a new log notifies nobody). */
  #inspect = false

  constructor(db: Database, t: Names, options: FanoutOptions = {}) {
    this.#db = db
    this.#t = t
    this.#options = { pollInterval: options.pollInterval ?? 1500, heartbeat: options.heartbeat ?? 15_000 }
  }

  /** Open streams. */
  get size(): number {
    return this.#streams.size
  }

  async start(): Promise<void> {
    ;({ head: this.#last, epoch: this.#epoch } = await readMeta(this.#db, this.#t))
    this.#unlisten = await this.#db.listen(this.#t.channel, () => this.kick())
    this.#timers.push(
      setInterval(() => {
        this.#inspect = true
        this.kick()
      }, this.#options.pollInterval),
      setInterval(() => {
        for (const stream of this.#streams) this.#send(stream, HEARTBEAT)
      }, this.#options.heartbeat),
    )
    for (const timer of this.#timers) (timer as { unref?: () => void }).unref?.()
  }

  /** A commit happened (here or elsewhere): read what is new. */
  kick(): void {
    if (this.#closed) return
    if (this.#reading) {
      this.#again = true
      return
    }
    this.#reading = this.#read()
      .catch((error: Error) => console.error(`[changecast-server] Could not read new batches: ${error.message}`))
      .finally(() => {
        this.#reading = undefined
        if (this.#again) {
          this.#again = false
          this.kick()
        }
      })
  }

  /**
   * Tells every instance that something committed, after the commit (a NOTIFY inside the
   * write transaction would take a global lock at commit). Calls are coalesced.
   */
  announce(): void {
    this.kick()
    if (this.#notifying) {
      this.#notifyAgain = true
      return
    }
    this.#notifying = true
    void this.#db
      .query('select pg_notify($1, $2)', [this.#t.channel, ''])
      .catch((error: Error) => console.error(`[changecast-server] NOTIFY failed: ${error.message}`))
      .finally(() => {
        this.#notifying = false
        if (this.#notifyAgain) {
          this.#notifyAgain = false
          this.announce()
        }
      })
  }

  /**
   * Opens a stream for a client at position `since`: a `hello` event, then every batch
   * after it (the client's own left out), then each new one as it commits. `onClose` is
   * called once when it ends, however it ends.
   */
  open({
    clientId,
    since,
    hello,
    signal,
    scopes,
    current,
    onClose,
    turn,
    pace,
  }: StreamOptions): ReadableStream<Uint8Array> {
    let stream: Stream | undefined
    const close = (): void => {
      if (stream) this.#drop(stream)
    }
    signal?.addEventListener('abort', close)
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        stream = {
          clientId,
          scopes,
          scopeSet: scopes && new Set(scopes),
          scopeKey: scopes ? JSON.stringify(scopes) : '*',
          current,
          position: since,
          live: false,
          controller,
          closed: false,
          turn,
          pace,
          onClose: () => {
            signal?.removeEventListener('abort', close)
            onClose?.()
          },
        }
        this.#streams.add(stream)
        // `head`: at least what the caller read (every revision acked before this request), even
        // when this instance's reader has not got there yet.
        const head = Math.max(this.#last, Number(hello.head ?? 0))
        this.#send(stream, encoder.encode(`event: hello\ndata: ${JSON.stringify({ ...hello, head })}\n\n`))
        void this.#catchUp(stream).catch((error: Error) => {
          console.error(`[changecast-server] A stream could not catch up: ${error.message}`)
          close()
        })
      },
      cancel: close,
    })
  }

  /** Ends a stream (once): it leaves the fan-out, its body ends, its owner is told. */
  #drop(stream: Stream): void {
    if (stream.closed) return
    stream.closed = true
    this.#streams.delete(stream)
    try {
      stream.controller.close()
    } catch {
      // Already closed or errored.
    }
    stream.onClose?.()
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const timer of this.#timers) clearInterval(timer)
    await this.#unlisten?.()
    for (const stream of [...this.#streams]) this.#drop(stream)
    await this.#reading
  }

  /** Reads the log from the stream's position until it reaches the fan-out's; then it is live. */
  async #catchUp(stream: Stream): Promise<void> {
    for (;;) {
      const upTo = this.#last
      const read = () =>
        readAfter(this.#db, this.#t, stream.position, PAGE, {
          upTo,
          scopes: stream.scopes,
          between: stream.pace ?? nextTurn,
        })
      const { batches, more } = await (stream.turn ? stream.turn(read) : read())
      for (const batch of batches) this.#deliver(stream, batch, new Map())
      if (stream.closed) return
      if (!more) {
        // Every batch up to the fan-out's position read (those of other scopes left out)...
        stream.position = Math.max(stream.position, upTo)
        // ...and it has not moved meanwhile: from here on the fan-out delivers, with no gap.
        if (this.#last === upTo) {
          stream.live = true
          return
        }
      }
    }
  }

  async #read(): Promise<void> {
    if (this.#inspect) {
      this.#inspect = false
      const { epoch, head } = await readMeta(this.#db, this.#t)
      // The log went back (restored from a backup) or is another one (recreated): every open
      // stream ends, so that its client reconnects and hears the new head or epoch in `hello`
      // (docs/protocol.md, "Epoch and resets"); a stream would otherwise stay silent past it.
      if (epoch !== this.#epoch || head < this.#last) {
        for (const stream of [...this.#streams]) this.#drop(stream)
        this.#epoch = epoch
        this.#last = head
      }
    }
    for (;;) {
      const { batches, more } = await readAfter(this.#db, this.#t, this.#last, PAGE, { between: nextTurn })
      if (batches.length > 0) await this.#recheck()
      for (const batch of batches) {
        // Encoded once per set of scopes read.
        const encoded = new Map<string, Uint8Array | undefined>()
        for (const stream of this.#streams) if (stream.live) this.#deliver(stream, batch, encoded)
        this.#last = batch.rev
      }
      if (!more) return
    }
  }

  /**
   * Asks again what each live stream's principal may read: a stream whose scopes changed is
   * closed before it is sent anything more (its client reconnects, and loads a snapshot).
   */
  async #recheck(): Promise<void> {
    const checked = [...this.#streams].filter((stream) => stream.live && stream.current)
    const verdicts = await Promise.all(checked.map((stream) => stream.current!().catch(() => false)))
    checked.forEach((stream, i) => {
      if (!verdicts[i]) this.#drop(stream)
    })
  }

  #deliver(stream: Stream, batch: StoredBatch, encoded: Map<string, Uint8Array | undefined>): void {
    if (batch.rev <= stream.position) return
    stream.position = batch.rev
    if (batch.origin === stream.clientId) return
    if (!encoded.has(stream.scopeKey)) {
      const json = batchJson(batch, stream.scopeSet)
      encoded.set(stream.scopeKey, json === undefined ? undefined : encoder.encode(event(batch.rev, json)))
    }
    const bytes = encoded.get(stream.scopeKey)
    if (bytes) this.#send(stream, bytes)
  }

  #send(stream: Stream, bytes: Uint8Array): void {
    if (stream.closed) return
    try {
      stream.controller.enqueue(bytes)
      if ((stream.controller.desiredSize ?? 0) < -MAX_BACKLOG) throw new Error('too far behind')
    } catch {
      this.#drop(stream)
    }
  }
}

const event = (rev: number, json: string): string => `event: batch\nid: ${rev}\ndata: ${json}\n\n`
