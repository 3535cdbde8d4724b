import type { SyncError } from '../errors.js'
import type { SyncStatus } from '../sync-port.js'
import { unref } from '../transport/tab-channel.js'
import { randomId } from '../util/random-id.js'
import { fromErrorInfo, parseMessage, toErrorInfo, type Message, type Request } from './channel.js'

/** What the relay needs from the controller of its context. */
export interface RelayHost {
  readonly origin: string
  /** True while this context leads (holds the sync lock). */
  leading(): boolean
  /** In the leader: runs a request (a flush is queued for the next round; others run as commands). */
  run(request: Request, id: string, reply: (error?: SyncError) => void): void
  /** A status from the leader, in a context that does not lead. */
  statusFromLeader(status: SyncStatus): void
  /** An error or rejection the leader reported, or another context's inbox change. */
  heard(message: Message): void
  /** `pause()` or `resume()` from another context, in the leader. */
  control(type: 'pause' | 'resume'): void
  /** The leader's status, to answer a context that says hello. */
  status(): SyncStatus
}

/**
 * The contexts (tabs, workers) of one database, on the BroadcastChannel
 * `changecast-sync:{name}`: requests of any context reach the leader (again the next one
 * after a hand-over), its answers, status, errors and rejections reach every context.
 */
export class TabRelay {
  readonly #channel: BroadcastChannel | undefined
  /** This context's own requests, until answered. */
  readonly #mine = new Map<string, { request: Request; resolve(): void; reject(error: Error): void }>()
  #leaderId: string | undefined

  readonly #host: RelayHost

  constructor(name: string, host: RelayHost) {
    this.#host = host
    if (typeof BroadcastChannel === 'function') {
      const channel = (this.#channel = new BroadcastChannel(`changecast-sync:${name}`))
      unref(channel)
      channel.onmessage = (event: MessageEvent) => this.#receive(parseMessage(event.data))
    }
  }

  /** Sends `request` to the leader (this context, when it leads); settles with its answer. */
  ask(request: Request): Promise<void> {
    const id = randomId()
    return new Promise((resolve, reject) => {
      this.#mine.set(id, { request, resolve, reject })
      if (this.#host.leading()) this.#accept(id, this.#host.origin, request)
      else this.post({ type: 'request', from: this.#host.origin, id, request })
    })
  }

  /** This context leads now: it takes the requests it had sent to the previous leader. */
  lead(): void {
    this.#leaderId = this.#host.origin
    for (const [id, { request }] of this.#mine) this.#accept(id, this.#host.origin, request)
  }

  /** Stops leading or following (the database closed): this context's requests end with `error`. */
  leave(error: Error): void {
    this.#leaderId = undefined
    for (const [id] of this.#mine) this.#answer(id, error)
  }

  /** Says hello: the leader answers with its status. */
  hello(): void {
    this.post({ type: 'hello', from: this.#host.origin })
  }

  post(message: Message): void {
    try {
      this.#channel?.postMessage(message)
    } catch {
      // Closed meanwhile: the other contexts ask again (hello) when they need to.
    }
  }

  close(): void {
    this.#channel?.close()
  }

  /** In the leader: takes a request from this or another context. */
  #accept(id: string, from: string, request: Request): void {
    if (!this.#host.leading()) return
    this.#host.run(request, id, (error) => this.#reply(from, id, error))
  }

  #reply(to: string, id: string, error?: SyncError): void {
    if (to === this.#host.origin) this.#answer(id, error)
    else this.post(error ? { type: 'reply', to, id, error: toErrorInfo(error) } : { type: 'reply', to, id })
  }

  #answer(id: string, error?: Error): void {
    const entry = this.#mine.get(id)
    if (!entry) return
    this.#mine.delete(id)
    if (error) entry.reject(error)
    else entry.resolve()
  }

  #receive(message: Message | undefined): void {
    if (!message) return
    const host = this.#host
    switch (message.type) {
      case 'hello':
        if (host.leading()) this.post({ type: 'status', from: host.origin, status: host.status() })
        break
      case 'status':
        if (host.leading()) break
        if (message.from !== this.#leaderId) {
          // A new leader: it does not know the requests sent to the one before.
          this.#leaderId = message.from
          for (const [id, { request }] of this.#mine) this.post({ type: 'request', from: host.origin, id, request })
        }
        host.statusFromLeader(message.status)
        break
      case 'request':
        this.#accept(message.id, message.from, message.request)
        break
      case 'reply':
        if (message.to === host.origin) this.#answer(message.id, message.error && fromErrorInfo(message.error))
        break
      case 'pause':
      case 'resume':
        if (host.leading()) host.control(message.type)
        break
      default:
        host.heard(message)
    }
  }
}
