import { InvalidOptionsError } from '../errors.js'

/** Retry delays: exponential with full jitter, capped. */
export interface BackoffOptions {
  /** First delay, ms. @default 500 */
  base?: number
  /** Longest delay, ms. @default 60000 */
  cap?: number
}

/** Options of {@link httpSync}. */
export interface HttpSyncOptions {
  /** Base URL of the sync server: the client calls `{url}/push`, `{url}/pull` and `{url}/stream`. */
  url: string
  /** Extra request headers, or a function (may be async) that returns them, e.g. a fresh auth token. */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>)
  /** How remote changes come in: Server-Sent Events, polling, or not at all. @default 'stream' */
  pull?: 'stream' | 'poll' | false
  /** Polling interval in ms (`pull: 'poll'`). @default 5000 */
  interval?: number
  /** Changelog rows per push request, batches per pull page. @default 50 */
  batchSize?: number
  /** Retry delays. A server's `Retry-After` is honoured up to 1 hour. @default { base: 500, cap: 60000 } */
  backoff?: BackoffOptions
  /**
   * The scopes to sync (e.g. `['project:42']`), within those the server lets this user read.
   * Changing them later makes the client fetch a snapshot of the new set.
   * @default every scope the user may read
   */
  scopes?: readonly string[]
}

/** Options with their defaults filled in. */
export interface ResolvedOptions {
  base: string
  headers: HttpSyncOptions['headers']
  pull: 'stream' | 'poll' | false
  interval: number
  batchSize: number
  backoff: Required<BackoffOptions>
  /** `&scope=…` for each subscribed scope ('' for all). */
  scopeQuery: string
}

const KEYS = ['url', 'headers', 'pull', 'interval', 'batchSize', 'backoff', 'scopes']

const positive = (value: unknown): boolean => value === undefined || (typeof value === 'number' && value > 0)

/** Validates `httpSync()` options, throwing {@link InvalidOptionsError} with what to fix. */
export function resolveOptions(options: unknown): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError('httpSync(options): options must be an object: { url, headers?, pull?, … }.')
  }
  const given = options as Record<string, unknown>
  for (const key of Object.keys(given)) {
    if (!KEYS.includes(key))
      throw new InvalidOptionsError(`Unknown httpSync option '${key}'. Known: ${KEYS.join(', ')}.`)
  }
  const { url, headers, pull = 'stream', interval = 5000, batchSize = 50, backoff = {}, scopes } = given
  if (
    scopes !== undefined &&
    !(Array.isArray(scopes) && scopes.length > 0 && scopes.every((scope) => typeof scope === 'string' && scope !== ''))
  ) {
    throw new InvalidOptionsError("httpSync(): 'scopes' must be a non-empty list of non-empty strings.")
  }
  if (typeof url !== 'string' || url === '') {
    throw new InvalidOptionsError("httpSync(): 'url' must be the sync server's base URL.")
  }
  if (headers !== undefined && typeof headers !== 'function' && (typeof headers !== 'object' || headers === null)) {
    throw new InvalidOptionsError("httpSync(): 'headers' must be an object or a function returning one.")
  }
  if (pull !== 'stream' && pull !== 'poll' && pull !== false) {
    throw new InvalidOptionsError("httpSync(): 'pull' must be 'stream', 'poll' or false.")
  }
  if (!positive(interval) || !positive(batchSize) || !Number.isInteger(batchSize)) {
    throw new InvalidOptionsError(
      "httpSync(): 'interval' must be a positive number and 'batchSize' a positive integer.",
    )
  }
  const {
    base = 500,
    cap = 60_000,
    ...rest
  } = (typeof backoff === 'object' && backoff ? backoff : { bad: 1 }) as Record<string, unknown>
  if (Object.keys(rest).length > 0 || !positive(base) || !positive(cap)) {
    throw new InvalidOptionsError("httpSync(): 'backoff' must be { base?: ms > 0, cap?: ms > 0 }.")
  }
  return {
    base: url.replace(/\/+$/, ''),
    headers: headers as HttpSyncOptions['headers'],
    pull,
    interval: interval as number,
    batchSize: batchSize as number,
    backoff: { base: base as number, cap: cap as number },
    scopeQuery: ((scopes as string[] | undefined) ?? []).map((scope) => `&scope=${encodeURIComponent(scope)}`).join(''),
  }
}
