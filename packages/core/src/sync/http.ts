import { isRetryable, retryAfterMs } from './backoff.js'

/** Largest reply body accepted, in bytes; a larger one is a protocol error. */
export const MAX_REPLY_BYTES = 10 * 1024 * 1024

/** A failed sync request: an HTTP status, a network failure, or a reply that breaks the protocol. */
export class SyncRequestError extends Error {
  constructor(
    message: string,
    /** HTTP status, when the server answered. */
    readonly status: number | undefined,
    /** Worth retrying later (network, 408, 429, 5xx, malformed reply). */
    readonly retryable: boolean,
    /** Server-requested wait (Retry-After), ms. */
    readonly retryAfter?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'SyncRequestError'
  }
}

export type Headers = Record<string, string>

/** Sends a request and returns the parsed JSON body; throws {@link SyncRequestError}. */
export async function requestJson(url: string, init: RequestInit, signal?: AbortSignal): Promise<unknown> {
  let response: Response
  try {
    response = await fetch(url, { ...init, signal })
  } catch (error) {
    if (signal?.aborted) throw error
    throw new SyncRequestError(`Network error on ${url}: ${String(error)}`, undefined, true, undefined, {
      cause: error,
    })
  }
  if (!response.ok) {
    const retryAfter = retryAfterMs(response.headers.get('retry-after'))
    // Not awaited: some fetch implementations only settle a cancel once the body was read.
    void response.body?.cancel().catch(() => undefined)
    throw new SyncRequestError(
      `${url} answered ${response.status} ${response.statusText}`.trim(),
      response.status,
      isRetryable(response.status),
      retryAfter,
    )
  }
  const text = await readText(response, url)
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    throw new SyncRequestError(`${url} answered with malformed JSON`, response.status, true, undefined, {
      cause: error,
    })
  }
}

async function readText(response: Response, url: string): Promise<string> {
  const declared = Number(response.headers.get('content-length'))
  if (declared > MAX_REPLY_BYTES) {
    void response.body?.cancel().catch(() => undefined)
    throw new SyncRequestError(
      `${url} answered with ${declared} bytes, over the ${MAX_REPLY_BYTES} limit`,
      response.status,
      true,
    )
  }
  if (!response.body) return ''
  const reader = response.body.getReader()
  const decoder = new TextDecoder()
  let size = 0
  let text = ''
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > MAX_REPLY_BYTES) {
      void reader.cancel().catch(() => undefined)
      throw new SyncRequestError(`${url} answered with more than ${MAX_REPLY_BYTES} bytes`, response.status, true)
    }
    text += decoder.decode(value, { stream: true })
  }
  return text + decoder.decode()
}
