import type { Database, Queryable } from './db/port.js'
import { nextTurn } from './fairness.js'
import type { Names } from './names.js'
import { batchJson, readAfter } from './store/log.js'
import { readMeta, type StoredBatch } from './store/model.js'

const PAGE = 500
const encoder = new TextEncoder()
const HEARTBEAT = encoder.encode(': heartbeat\n\n')
/** A stream whose reader is this many bytes behind is closed: the client reconnects and catches up. */
export const MAX_BACKLOG = 8 * 1024 * 1024

/** A web `ReadableStream`'s controller as a sink (its queue counted in bytes). */
export const controllerSink = (controller: ReadableStreamDefaultController<Uint8Array>): StreamSink => ({
  write(bytes) {
    controller.enqueue(bytes)
    return (controller.desiredSize ?? 0) >= -MAX_BACKLOG
  },
  end() {
    try {
      controller.close()
    } catch {
      // Already closed or errored.
    }
  },
})

export interface FanoutOptions {
  /** Milliseconds between reads of the log without a notification (a safety net). @default 1500 */
  pollInterval?: number
  /** Milliseconds between heartbeats on every stream. @default 15000 */
  heartbeat?: number
}

/**
 * Where a stream's bytes go: a web `ReadableStream` (any runtime), or, under
 * `serve()` on Node, the socket itself (an idle stream then costs little more than its socket).
 */
export interface StreamSink {
  /** Queues bytes; false when the stream must end (its reader is too far behind, or gone). */
  write(bytes: Uint8Array): boolean
  /** Ends the stream. */
  end(): void
}

/** What streams reading the same scopes share: the scopes, as a list, a set, and one text. */
interface View {
  /** The scopes it reads (sorted), or undefined for every scope. */
  scopes?: readonly string[]
  set?: ReadonlySet<string>
  /** The key of the encodings shared between streams. */
  key: string
  /** Streams open with this view. */
  count: number
}

/** One open Server-Sent Events stream. */
interface Stream {
  clientId: string
  view: View
  /** Resolves false once its principal's scopes changed (asked before it is sent a batch): it is then closed. */
  current?: () => Promise<boolean>
  /** The newest revision this stream has been given (or skipped as its client's own). */
  position: number
  /** Caught up: new batches come from the fan-out; before that, from its own reads. */
  live: boolean
  /** Sent something since the last heartbeat round (which then leaves it alone). */
  busy: boolean
  sink: StreamSink
  closed: boolean
  onClose?: () => void
  turn?: StreamOptions['turn']
  pace?: StreamOptions['pace']
  read?: StreamOptions['read']
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
  /**
   * Where its catch-up reads the log after `after` up to `upTo` (see `Replicas`): the
   * database to read, and the newest revision it holds (past `after`). @default the primary, up to the fan-out's position
   */
  read?: (after: number, upTo: number) => Promise<{ db: Queryable; head: number }>
}

/**
 * Sends new batches to this instance's open streams. One reader per instance reads the
 * log by revision — when a commit is announced (`LISTEN`), when this instance commits,
 * and every `pollInterval` in case a notification was lost — and hands each batch, encoded
 * once per set of scopes, to the caught-up streams that read one of its scopes: streams are
 * indexed by scope, so a write costs nothing for the streams of other scopes. A new stream
 * first reads the log itself from its client's position, then joins.
 */
export class Fanout {
  readonly #db: Database
  readonly #t: Names
  readonly #options: Required<FanoutOptions>
  readonly #streams = new Set<Stream>()
  /** Open streams by the scopes they read; `#everyScope`: those that read every scope. */
  readonly #byScope = new Map<string, Set<Stream>>()
  readonly #everyScope = new Set<Stream>()
  /** Views by key: streams reading the same scopes share one. */
  readonly #views = new Map<string, View>()
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
  /** Called with each new head this instance reads (see `Replicas`). */
  onHead?: (head: number) => void

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
    this.onHead?.(this.#last)
    this.#unlisten = await this.#db.listen(this.#t.channel, () => this.kick())
    this.#timers.push(
      setInterval(() => {
        this.#inspect = true
        this.kick()
      }, this.#options.pollInterval),
      setInterval(() => this.#heartbeat(), this.#options.heartbeat),
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
   * Prepares a stream for a client at position `since`; it opens when given its sink: a
   * `hello` event, then every batch after it (the client's own left out), then each new one
   * as it commits. Returns the function that ends it; `onClose` is called once when it ends,
   * however it ends.
   */
  open(options: StreamOptions): (sink: StreamSink) => () => void {
    return (sink) => this.#start(options, sink)
  }

  #start({ clientId, since, hello, scopes, current, onClose, turn, pace, read }: StreamOptions, sink: StreamSink) {
    const stream: Stream = {
      clientId,
      view: this.#view(scopes),
      current,
      position: since,
      live: false,
      busy: false,
      sink,
      closed: false,
      turn,
      pace,
      read,
      onClose,
    }
    this.#streams.add(stream)
    if (!stream.view.scopes) this.#everyScope.add(stream)
    for (const scope of stream.view.scopes ?? []) {
      let streams = this.#byScope.get(scope)
      if (!streams) this.#byScope.set(scope, (streams = new Set()))
      streams.add(stream)
    }
    // `head`: at least what the caller read (every revision acked before this request), even
    // when this instance's reader has not got there yet.
    const head = Math.max(this.#last, Number(hello.head ?? 0))
    this.#send(stream, encoder.encode(`event: hello\ndata: ${JSON.stringify({ ...hello, head })}\n\n`))
    this.#catchUp(stream).catch((error: Error) => this.#failed(stream, error))
    return this.#dropper(stream)
  }

  /** The function that ends a stream (it holds the stream only). */
  #dropper(stream: Stream): () => void {
    return () => this.#drop(stream)
  }

  #failed(stream: Stream, error: Error): void {
    console.error(`[changecast-server] A stream could not catch up: ${error.message}`)
    this.#drop(stream)
  }

  /** The view of these scopes, shared with the streams that read the same. */
  #view(scopes: readonly string[] | undefined): View {
    const key = scopes ? JSON.stringify(scopes) : '*'
    let view = this.#views.get(key)
    if (!view) this.#views.set(key, (view = { scopes, set: scopes && new Set(scopes), key, count: 0 }))
    view.count++
    return view
  }

  /** Ends a stream (once): it leaves the fan-out, its body ends, its owner is told. */
  #drop(stream: Stream): void {
    if (stream.closed) return
    stream.closed = true
    this.#streams.delete(stream)
    this.#everyScope.delete(stream)
    const { view } = stream
    for (const scope of view.scopes ?? []) {
      const streams = this.#byScope.get(scope)
      streams?.delete(stream)
      if (streams?.size === 0) this.#byScope.delete(scope)
    }
    if (--view.count === 0) this.#views.delete(view.key)
    stream.sink.end()
    stream.onClose?.()
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const timer of this.#timers) clearInterval(timer)
    await this.#unlisten?.()
    for (const stream of [...this.#streams]) this.#drop(stream)
    await this.#reading
  }

  /**
   * Reads the log from the stream's position until it reaches the fan-out's; then it is
   * live. A replica (`read`) serves what it holds; the rest comes from the next round.
   */
  async #catchUp(stream: Stream): Promise<void> {
    for (;;) {
      const wanted = this.#last
      const { db, head } = stream.read ? await stream.read(stream.position, wanted) : { db: this.#db, head: wanted }
      const upTo = Math.min(wanted, head)
      const read = () =>
        readAfter(db, this.#t, stream.position, PAGE, {
          upTo,
          scopes: stream.view.scopes,
          between: stream.pace ?? nextTurn,
        })
      const { batches, more } = await (stream.turn ? stream.turn(read) : read())
      for (const batch of batches) this.#deliver(stream, batch, new Map())
      if (stream.closed) return
      if (!more) {
        // Every batch up to upTo read (those of other scopes left out)...
        stream.position = Math.max(stream.position, upTo)
        // ...and the fan-out has not moved past it: from here on the fan-out delivers, with no gap.
        if (upTo === wanted && this.#last === wanted) {
          stream.live = true
          // What only the catch-up needed.
          stream.turn = stream.pace = stream.read = undefined
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
        this.onHead?.(head)
      }
    }
    for (;;) {
      const { batches, more } = await readAfter(this.#db, this.#t, this.#last, PAGE, { between: nextTurn })
      for (const batch of batches) {
        const readers = this.#readersOf(batch)
        if (readers.length > 0) await this.#recheck(readers)
        // Encoded once per set of scopes read.
        const encoded = new Map<string, Uint8Array | undefined>()
        for (const stream of readers) if (stream.live) this.#deliver(stream, batch, encoded)
        this.#last = batch.rev
      }
      if (batches.length > 0) this.onHead?.(this.#last)
      if (!more) return
    }
  }

  /** The streams that read one of the scopes a batch writes (each once). */
  #readersOf(batch: StoredBatch): Stream[] {
    const readers = new Set(this.#everyScope)
    for (const change of batch.changes) for (const stream of this.#byScope.get(change.scope) ?? []) readers.add(stream)
    return [...readers]
  }

  /**
   * Asks again what each live stream's principal may read, before it is sent a batch: a
   * stream whose scopes changed is closed first (its client reconnects, and loads a snapshot).
   */
  async #recheck(streams: readonly Stream[]): Promise<void> {
    const checked = streams.filter((stream) => stream.live && stream.current)
    if (checked.length === 0) return
    const verdicts = await Promise.all(checked.map((stream) => stream.current!().catch(() => false)))
    checked.forEach((stream, i) => {
      if (!verdicts[i]) this.#drop(stream)
    })
  }

  /**
   * A heartbeat to each stream that was sent nothing since the last one (one timer for all
   * streams); and the scopes of every live stream asked again, so that a stream whose
   * principal gained a scope is closed too (its client reconnects and loads it).
   */
  #heartbeat(): void {
    for (const stream of this.#streams) {
      if (stream.busy) stream.busy = false
      else this.#send(stream, HEARTBEAT)
    }
    void this.#recheck([...this.#streams])
  }

  #deliver(stream: Stream, batch: StoredBatch, encoded: Map<string, Uint8Array | undefined>): void {
    if (batch.rev <= stream.position) return
    stream.position = batch.rev
    if (batch.origin === stream.clientId) return
    const { key, set } = stream.view
    if (!encoded.has(key)) {
      const json = batchJson(batch, set)
      encoded.set(key, json === undefined ? undefined : encoder.encode(event(batch.rev, json)))
    }
    const bytes = encoded.get(key)
    if (bytes) this.#send(stream, bytes)
  }

  #send(stream: Stream, bytes: Uint8Array): void {
    if (stream.closed) return
    stream.busy = true
    let kept = false
    try {
      kept = stream.sink.write(bytes)
    } catch {
      // Gone.
    }
    if (!kept) this.#drop(stream)
  }
}

const event = (rev: number, json: string): string => `event: batch\nid: ${rev}\ndata: ${json}\n\n`
