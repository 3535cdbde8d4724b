import type { Database } from './db/port.js'
import type { Names } from './names.js'
import { batchJson, readAfter, readMeta, type StoredBatch } from './store.js'

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
  /** The newest revision this stream has been given (or skipped as its client's own). */
  position: number
  /** Caught up: new batches come from the fan-out; before that, from its own reads. */
  live: boolean
  controller: ReadableStreamDefaultController<Uint8Array>
  closed: boolean
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
    this.#last = (await readMeta(this.#db, this.#t)).head
    this.#unlisten = await this.#db.listen(this.#t.channel, () => this.kick())
    this.#timers.push(
      setInterval(() => this.kick(), this.#options.pollInterval),
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
   * after it (the client's own left out), then each new one as it commits.
   */
  open(clientId: string, since: number, epoch: string, signal: AbortSignal | undefined): ReadableStream<Uint8Array> {
    let stream: Stream | undefined
    const close = (): void => {
      if (!stream || stream.closed) return
      stream.closed = true
      this.#streams.delete(stream)
      try {
        stream.controller.close()
      } catch {
        // Already closed or errored.
      }
    }
    signal?.addEventListener('abort', close)
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        stream = { clientId, position: since, live: false, controller, closed: false }
        this.#streams.add(stream)
        this.#send(stream, encoder.encode(`event: hello\ndata: ${JSON.stringify({ epoch, head: this.#last })}\n\n`))
        void this.#catchUp(stream).catch((error: Error) => {
          console.error(`[changecast-server] A stream could not catch up: ${error.message}`)
          close()
        })
      },
      cancel: close,
    })
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const timer of this.#timers) clearInterval(timer)
    await this.#unlisten?.()
    for (const stream of [...this.#streams]) {
      stream.closed = true
      try {
        stream.controller.close()
      } catch {
        // Already closed.
      }
    }
    this.#streams.clear()
    await this.#reading
  }

  /** Reads the log from the stream's position until it reaches the fan-out's; then it is live. */
  async #catchUp(stream: Stream): Promise<void> {
    for (;;) {
      const batches = await readAfter(this.#db, this.#t, stream.position, PAGE)
      for (const batch of batches) this.#deliver(stream, batch, encoder.encode(event(batch)))
      if (stream.closed) return
      // Nothing between the last read and the fan-out's position: from here on, no gap.
      if (batches.length < PAGE && stream.position >= this.#last) {
        stream.live = true
        return
      }
    }
  }

  async #read(): Promise<void> {
    for (;;) {
      const batches = await readAfter(this.#db, this.#t, this.#last, PAGE)
      for (const batch of batches) {
        const bytes = encoder.encode(event(batch))
        for (const stream of this.#streams) if (stream.live) this.#deliver(stream, batch, bytes)
        this.#last = batch.rev
      }
      if (batches.length < PAGE) return
    }
  }

  #deliver(stream: Stream, batch: StoredBatch, bytes: Uint8Array): void {
    if (batch.rev <= stream.position) return
    stream.position = batch.rev
    if (batch.origin !== stream.clientId) this.#send(stream, bytes)
  }

  #send(stream: Stream, bytes: Uint8Array): void {
    if (stream.closed) return
    try {
      stream.controller.enqueue(bytes)
      if ((stream.controller.desiredSize ?? 0) < -MAX_BACKLOG) throw new Error('too far behind')
    } catch {
      stream.closed = true
      this.#streams.delete(stream)
      try {
        stream.controller.close()
      } catch {
        // Already closed.
      }
    }
  }
}

const event = (batch: StoredBatch): string => `event: batch\nid: ${batch.rev}\ndata: ${batchJson(batch)}\n\n`
