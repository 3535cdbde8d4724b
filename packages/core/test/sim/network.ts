// The network of the simulated world: `fetch` in every page goes through it. A request
// and its reply each travel a seeded number of simulated milliseconds; a stream's chunks
// arrive one by one, each after its own delay, in order. A client taken offline fails
// its requests as a browser does ("Failed to fetch") and its open streams break. Every
// request, reply and chunk is written to the world's trace.
import type { World } from './world.js'

export interface NetworkOptions {
  /** Who sends a request (the client or user its URL names). */
  who(url: URL): string
  /** The server (with its faults): answers one request. */
  handle(request: Request, who: string): Promise<Response>
  /** Extra delay of a reply, ms, drawn from the world (push replies travel a while). */
  slow?(route: string): number
}

const failed = () => new TypeError('Failed to fetch')
const aborted = () => new DOMException('This operation was aborted', 'AbortError')
const short = (text: string) => (text.length > 160 ? `${text.slice(0, 160)}…(${text.length})` : text)

export class Network {
  readonly #offline = new Set<string>()
  readonly #cuts = new Map<string, Set<() => void>>()
  #count = 0
  #saved?: PropertyDescriptor

  constructor(
    private readonly world: World,
    private readonly options: NetworkOptions,
  ) {}

  install(): void {
    this.#saved = Object.getOwnPropertyDescriptor(globalThis, 'fetch')
    Object.defineProperty(globalThis, 'fetch', {
      configurable: true,
      writable: true,
      value: (input: RequestInfo | URL, init?: RequestInit) => this.fetch(new Request(input, init)),
    })
  }

  uninstall(): void {
    if (this.#saved) Object.defineProperty(globalThis, 'fetch', this.#saved)
  }

  isOffline(who: string): boolean {
    return this.#offline.has(who)
  }

  /** Takes a client off the network (its open streams break) or puts it back. */
  setOffline(who: string, offline: boolean): void {
    this.world.trace(`net ${who} ${offline ? 'offline' : 'online'}`)
    if (!offline) return void this.#offline.delete(who)
    this.#offline.add(who)
    for (const cut of this.#cuts.get(who) ?? []) cut()
  }

  /** Every client back online. */
  allOnline(): void {
    for (const who of [...this.#offline]) this.setOffline(who, false)
  }

  async fetch(request: Request): Promise<Response> {
    const { world } = this
    const url = new URL(request.url)
    const who = this.options.who(url)
    const route = url.pathname.split('/').pop() ?? ''
    const id = ++this.#count
    const body = request.method === 'GET' ? '' : ` ${short(await request.clone().text())}`
    world.trace(`→${id} ${who} ${request.method} ${route}${url.search}${body}`)
    await this.#travel(request.signal)
    if (this.#offline.has(who)) {
      world.trace(`✕${id} offline`)
      throw failed()
    }
    const response = await this.options.handle(request, who)
    if (response.type === 'error') {
      world.trace(`✕${id} lost`)
      throw failed()
    }
    await this.#travel(request.signal, this.options.slow?.(route) ?? 0)
    if (this.#offline.has(who)) {
      void response.body?.cancel().catch(() => undefined)
      world.trace(`✕${id} offline`)
      throw failed()
    }
    const streamed = (response.headers.get('content-type') ?? '').startsWith('text/event-stream')
    if (!streamed || !response.body) {
      const text = await response.text()
      world.trace(`←${id} ${response.status} ${short(text)}`)
      return new Response(response.status === 204 ? null : text, {
        status: response.status,
        headers: response.headers,
      })
    }
    world.trace(`←${id} ${response.status} stream`)
    return new Response(this.#stream(id, who, response.body, request.signal), {
      status: response.status,
      headers: response.headers,
    })
  }

  /** A reply body that arrives chunk by chunk, each after a seeded delay, and breaks when cut. */
  #stream(id: number, who: string, body: ReadableStream<Uint8Array>, signal: AbortSignal): ReadableStream<Uint8Array> {
    const { world } = this
    const reader = body.getReader()
    const decoder = new TextDecoder()
    let broken = false
    let last = world.now
    let controller!: ReadableStreamDefaultController<Uint8Array>
    const cuts = this.#cuts.get(who) ?? new Set()
    this.#cuts.set(who, cuts)
    const end = (error?: unknown) => {
      if (broken) return
      broken = true
      cuts.delete(cut)
      signal.removeEventListener('abort', abort)
      void reader.cancel().catch(() => undefined)
      try {
        if (error) controller.error(error)
        else controller.close()
      } catch {
        // Already closed by the reader.
      }
    }
    const cut = () => {
      world.trace(`✕${id} stream cut`)
      end(failed())
    }
    const abort = () => end(aborted())
    cuts.add(cut)
    signal.addEventListener('abort', abort)
    const later = (run: () => void) => {
      last = Math.max(last, world.now + world.hop())
      world.schedule(run, last - world.now)
    }
    void (async () => {
      for (;;) {
        const { done, value } = await reader.read()
        if (broken) return
        if (done) return later(() => (world.trace(`←${id} end`), end()))
        later(() => {
          if (broken) return
          world.trace(`←${id} ${short(decoder.decode(value, { stream: true }))}`)
          controller.enqueue(value)
        })
      }
    })().catch((error: unknown) => later(() => end(error)))
    return new ReadableStream<Uint8Array>({
      start(given) {
        controller = given
      },
      cancel() {
        broken = true
        cuts.delete(cut)
        void reader.cancel().catch(() => undefined)
      },
    })
  }

  #travel(signal: AbortSignal, extra = 0): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(aborted())
      const onAbort = () => {
        this.world.cancel(timer)
        reject(aborted())
      }
      const timer = this.world.schedule(() => {
        signal.removeEventListener('abort', onAbort)
        resolve()
      }, this.world.hop() + extra)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }
}
