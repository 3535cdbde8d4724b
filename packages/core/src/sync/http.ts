import { SyncError, type SyncErrorReason } from '../errors.js'
import { isRetryable, retryAfterMs } from './backoff.js'
import { LIMITS, ProtocolViolation } from './protocol.js'

/** A failed request, with the wait the server asked for. */
export class RequestFailure extends SyncError {
  constructor(
    message: string,
    details: { reason: SyncErrorReason; status?: number; retrying: boolean; cause?: unknown },
    /** `Retry-After`, ms (capped). */
    readonly retryAfter?: number,
  ) {
    super(message, details)
  }
}

/** Sends a request; throws {@link RequestFailure} for a network error or an error status. */
export async function send(url: string, init: RequestInit, signal: AbortSignal): Promise<Response> {
  let response: Response
  try {
    response = await fetch(url, { ...init, signal })
  } catch (error) {
    if (signal.aborted) throw error
    throw new RequestFailure(`Could not reach ${url}: ${String(error)}`, {
      reason: 'network',
      retrying: true,
      cause: error,
    })
  }
  if (response.ok) return response
  const retryAfter = retryAfterMs(response.headers.get('retry-after'))
  // What the server says is worth showing; at most a line of it.
  const text = await response.text().then(
    (body) => body.slice(0, 200),
    () => '',
  )
  const status = response.status
  throw new RequestFailure(
    `${url} answered ${status}${text ? `: ${text}` : ''}`,
    { reason: 'http', status, retrying: isRetryable(status) },
    retryAfter,
  )
}

/** Sends a request and returns its JSON body, at most {@link LIMITS.replyBytes} long. */
export async function requestJson(url: string, init: RequestInit, signal: AbortSignal): Promise<unknown> {
  const response = await send(url, init, signal)
  const text = await readCapped(response)
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    throw new ProtocolViolation(`${url} answered with malformed JSON (${String(error)})`)
  }
}

async function readCapped(response: Response): Promise<string> {
  const limit = LIMITS.replyBytes
  if (Number(response.headers.get('content-length')) > limit || !response.body) {
    void response.body?.cancel().catch(() => undefined)
    if (!response.body) return ''
    throw new ProtocolViolation(`The sync server's reply is over the ${limit}-byte limit`)
  }
  const reader = response.body.getReader()
  const decoder = new TextDecoder()
  const parts: string[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      void reader.cancel().catch(() => undefined)
      throw new ProtocolViolation(`The sync server's reply is over the ${limit}-byte limit`)
    }
    parts.push(decoder.decode(value, { stream: true }))
  }
  parts.push(decoder.decode())
  return parts.join('')
}
