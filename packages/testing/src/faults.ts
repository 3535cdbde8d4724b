/** Faults injected in front of a sync server; every field can be changed at run time with `configure()`. */
export interface FaultOptions {
  /** Delay before each answer, ms, or a [min, max] range. @default 0 */
  latency?: number | [number, number]
  /** Share of requests answered with 503 or 429 (with `Retry-After`) without reaching the server. @default 0 */
  failureRate?: number
  /** `Retry-After` sent with 429 and 503, seconds. @default 0 */
  retryAfter?: number
  /** Share of requests whose connection drops before the server reads them (a network error). @default 0 */
  dropRate?: number
  /** Share of push requests processed, whose reply is then lost (a network error after the commit). @default 0 */
  lostReplyRate?: number
  /** Share of pulled or streamed batches sent twice. @default 0 */
  duplicateRate?: number
  /** Share of streamed batches followed, later, by an older batch of the same stream sent again. @default 0 */
  lateRate?: number
  /** Randomness, for reproducible fault injection. @default Math.random */
  random?: () => number
}

/** A request handler with faults in front of it. */
export interface FaultyHandler {
  (request: Request): Promise<Response>
  /** Changes the faults from now on (open streams included). */
  configure(options: Partial<FaultOptions>): void
}

const encoder = new TextEncoder()

/**
 * Puts the faults of a real network in front of any server speaking the sync protocol
 * (`@changecast/server`, the in-memory server, your own): latency, dropped connections,
 * 503/429 with `Retry-After`, push replies lost after the commit, batches delivered twice
 * and streamed batches delivered late. Routes are told apart by the path's last segment
 * (`push`, `pull`, `stream`); stream events must be separated by a blank line (`\n\n`).
 * A reply lost, or a connection dropped, is a `Response.error()`.
 *
 * @example
 * const sync = createSyncHandler({ database: openPGlite(), authenticate: insecureNoAuth })
 * const faulty = withFaults(sync, { lostReplyRate: 0.2, duplicateRate: 0.1, random: seeded(7) })
 * setupServer(http.all('https://sync.test/*', ({ request }) => faulty(request))).listen()
 */
export function withFaults(handle: (request: Request) => Promise<Response>, initial: FaultOptions = {}): FaultyHandler {
  const options: FaultOptions = { ...initial }
  const random = () => (options.random ?? Math.random)()
  const chance = (rate = 0) => rate > 0 && random() < rate

  async function delay() {
    const { latency = 0 } = options
    const ms = Array.isArray(latency) ? latency[0] + random() * (latency[1] - latency[0]) : latency
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms))
  }

  function duplicatePull(text: string): string {
    const reply = JSON.parse(text) as { batches?: unknown[] }
    if (!Array.isArray(reply.batches)) return text
    reply.batches = reply.batches.flatMap((batch) => (chance(options.duplicateRate) ? [batch, batch] : [batch]))
    return JSON.stringify(reply)
  }

  function faultyStream(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    const decoder = new TextDecoder()
    const seen: string[] = []
    let buffer = ''
    let closed = false
    let late = new Set<ReturnType<typeof setTimeout>>()
    return body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          buffer += decoder.decode(chunk, { stream: true })
          let end: number
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const event = buffer.slice(0, end + 2)
            buffer = buffer.slice(end + 2)
            controller.enqueue(encoder.encode(event))
            if (!/^event: batch$/m.test(event)) continue
            seen.push(event)
            if (chance(options.duplicateRate)) controller.enqueue(encoder.encode(event))
            if (chance(options.lateRate)) {
              const older = seen[Math.floor(random() * seen.length)]!
              const timer = setTimeout(() => {
                late.delete(timer)
                try {
                  if (!closed) controller.enqueue(encoder.encode(older))
                } catch {
                  // The client closed the stream meanwhile.
                }
              }, random() * 50)
              late.add(timer)
            }
          }
        },
        flush(controller) {
          closed = true
          for (const timer of late) clearTimeout(timer)
          late = new Set()
          if (buffer) controller.enqueue(encoder.encode(buffer))
        },
      }),
    )
  }

  const faulty = async (request: Request): Promise<Response> => {
    const route = new URL(request.url).pathname.split('/').pop()
    await delay()
    if (chance(options.dropRate)) return Response.error()
    if (chance(options.failureRate)) {
      const headers = { 'content-type': 'application/json', 'retry-after': String(options.retryAfter ?? 0) }
      return random() < 0.5
        ? new Response('{"error":"overloaded"}', { status: 503, headers })
        : new Response('{"error":"slow down"}', { status: 429, headers })
    }
    const response = await handle(request)
    if (response.status !== 200) return response
    if (route === 'push' && chance(options.lostReplyRate)) {
      await response.body?.cancel()
      return Response.error()
    }
    if (route === 'pull' && options.duplicateRate) {
      return new Response(duplicatePull(await response.text()), { headers: response.headers })
    }
    if (route === 'stream' && response.body) {
      return new Response(faultyStream(response.body), { headers: response.headers })
    }
    return response
  }
  return Object.assign(faulty, {
    configure(next: Partial<FaultOptions>) {
      Object.assign(options, next)
    },
  })
}
