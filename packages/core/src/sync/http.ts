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

/** What a request needs from the sync: the app's headers, and where to record a contact with the server. */
export interface Sender {
  readonly signal: AbortSignal
  headers(): Promise<Record<string, string>>
  /** The server answered a request with success (`true`), or could not be reached or failed (`false`). */
  contact(ok: boolean): void
  /** The last request (push, pull, snapshot or stream) could not reach the server, or it failed. */
  unreachable?: boolean
  /** The headers a request was refused with twice (401), as text, until new ones go through. */
  refused?: string | undefined
  /** The headers of the last request the server accepted, as text. */
  accepted?: string
}

/**
 * Sends a request with the app's headers. A `401` asks for the headers again (a token may
 * have expired meanwhile) and sends it once more; refused again, it fails with the reason
 * `unauthorized`. Throws {@link RequestFailure} for a network error or an error status.
 */
export async function send(sender: Sender, url: string, init: RequestInit, signal = sender.signal): Promise<Response> {
  let headers = ''
  const attempt = async (): Promise<Response> => {
    const given = await sender.headers()
    headers = JSON.stringify(given)
    try {
      return await fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), ...given }, signal })
    } catch (error) {
      if (signal.aborted) throw error
      sender.unreachable = true
      sender.contact(false)
      throw new RequestFailure(`Could not reach ${url}: ${String(error)}`, {
        reason: 'network',
        retrying: true,
        cause: error,
      })
    }
  }
  let response = await attempt()
  if (response.status === 401) {
    void response.body?.cancel().catch(() => undefined)
    response = await attempt()
  }
  sender.unreachable = isRetryable(response.status)
  if (response.ok) {
    sender.refused = undefined
    sender.accepted = headers
    sender.contact(true)
    return response
  }
  if (sender.unreachable) sender.contact(false)
  const retryAfter = retryAfterMs(response.headers.get('retry-after'))
  // What the server says is worth showing; at most a line of it.
  const body = await response.text().catch(() => '')
  const text = body.slice(0, 200)
  const status = response.status
  // A client id of another principal (docs/protocol.md, "Principals"): waits for other credentials too.
  const reason =
    status === 401
      ? 'unauthorized'
      : status === 403 && /"code":\s*"principal-changed"/.test(body.slice(0, 4096))
        ? 'principal-changed'
        : 'http'
  if (reason !== 'http') sender.refused = headers
  throw new RequestFailure(
    `${url} answered ${status}${text ? `: ${text}` : ''}`,
    { reason, status, retrying: isRetryable(status) },
    retryAfter,
  )
}

/** Sends a request and returns its JSON body, at most {@link LIMITS.replyBytes} long. */
export async function requestJson(sender: Sender, url: string, init: RequestInit = {}): Promise<unknown> {
  const response = await send(sender, url, init)
  const limit = LIMITS.replyBytes
  const text = await readCappedText(
    response,
    limit,
    () => new ProtocolViolation(`A reply is over the ${limit}-byte limit`),
  )
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    throw new ProtocolViolation(`${url} answered malformed JSON (${String(error)})`)
  }
}
