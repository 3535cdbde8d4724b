import { SyncError, type SyncErrorReason } from '../errors.js'
import { isRetryable, retryAfterMs } from './backoff.js'
import { LIMITS, ProtocolViolation, readCappedText } from './protocol.js'

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
  const limit = LIMITS.replyBytes
  const text = await readCappedText(
    response,
    limit,
    () => new ProtocolViolation(`The sync server's reply is over the ${limit}-byte limit`),
  )
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    throw new ProtocolViolation(`${url} answered with malformed JSON (${String(error)})`)
  }
}
