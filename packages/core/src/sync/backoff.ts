/** Retry delays: exponential with full jitter, capped. */
export interface BackoffOptions {
  /** First delay, ms. @default 500 */
  base?: number
  /** Longest delay, ms. @default 60000 */
  cap?: number
}

/** Delay before retry number `attempt` (1, 2, …): a random point in [0, min(cap, base·2^(attempt-1))]. */
export function backoffDelay(
  attempt: number,
  { base = 500, cap = 60_000 }: BackoffOptions = {},
  random = Math.random,
): number {
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, attempt - 1))
  return Math.round(random() * ceiling)
}

/** A `Retry-After` header (seconds or HTTP date) in ms, or undefined when absent or invalid. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  const date = Date.parse(header)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/** 408, 429 and 5xx are worth retrying; other statuses mean the request itself is wrong. */
export function isRetryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}
