import type { BackoffOptions } from './options.js'

/** The longest `Retry-After` honoured, ms: longer ones are capped (timers overflow past 2^31 ms). */
export const MAX_RETRY_AFTER = 60 * 60 * 1000

/** Delay before retry number `attempt` (1, 2, …): a random point in [0, min(cap, base·2^(attempt-1))]. */
export function backoffDelay(
  attempt: number,
  { base = 500, cap = 60_000 }: BackoffOptions = {},
  random = Math.random,
): number {
  const ceiling = Math.min(cap, base * 2 ** Math.min(30, Math.max(0, attempt - 1)))
  return Math.round(random() * ceiling)
}

/**
 * A `Retry-After` header (seconds or HTTP date) in ms, at most {@link MAX_RETRY_AFTER};
 * undefined when absent or invalid.
 */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined
  const seconds = Number(header)
  const ms = Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : Date.parse(header) - now
  return Number.isNaN(ms) ? undefined : Math.min(MAX_RETRY_AFTER, Math.max(0, ms))
}

/** 408, 429 and 5xx are worth retrying; other statuses mean the request itself is wrong. */
export function isRetryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}
