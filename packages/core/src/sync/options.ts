import { InvalidOptionsError } from '../errors.js'
import type { SetAsideActions } from './set-aside.js'
import type { StreamTransport } from './stream.js'
import type { UserSwitching } from './sign-out.js'

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
  /**
   * How remote changes come in: polled every `interval` ms, live over Server-Sent Events
   * with `stream` (`import { stream } from '@changecast/core/sync'`), or not at all.
   * @default 'poll'
   */
  pull?: 'poll' | StreamTransport | false
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
  /**
   * `userSwitching` (from `@changecast/core/sync`): enables `feed.sync.signOut()` and
   * `discardPending()`, for apps whose users share one database (README, "Auth").
   */
  users?: UserSwitching
  /**
   * `setAsideActions` (from `@changecast/core/sync`): enables `feed.sync.retry()` and `drop()`
   * of set-aside items (README, "Set-aside items").
   */
  setAside?: SetAsideActions
}

/** Options with their defaults filled in. */
export interface ResolvedOptions {
  base: string
  headers: HttpSyncOptions['headers']
  pull: 'poll' | StreamTransport | false
  interval: number
  batchSize: number
  backoff: Required<BackoffOptions>
  /** `&scope=…` for each subscribed scope ('' for all). */
  scopeQuery: string
  users: UserSwitching | undefined
  setAside: SetAsideActions | undefined
}

/**
 * The error of a request whose part was not given to `httpSync()` (`signOut()` without
 * `users`…), or undefined when it was (or needs none).
 */
export function partMissing(name: string, options: ResolvedOptions): InvalidOptionsError | undefined {
  const [option, part] =
    name === 'retry' || name === 'drop' ? ['setAside', 'setAsideActions'] : ['users', 'userSwitching']
  return name === 'flush' || options[option as 'users']
    ? undefined
    : new InvalidOptionsError(`${name}() needs httpSync({ ${option}: ${part} }).`)
}

const positive = (value: unknown): boolean => typeof value === 'number' && value > 0
const isObject = (value: unknown): value is object => typeof value === 'object' && value !== null

/** Each option: whether a value given for it is valid, and what it must be. */
const CHECKS: Record<string, [(value: never) => unknown, string]> = {
  url: [(value: unknown) => value && typeof value === 'string', "the sync server's base URL"],
  headers: [
    (value: unknown) => typeof value === 'function' || isObject(value),
    'an object or a function returning one',
  ],
  pull: [
    (value: unknown) =>
      value === 'poll' || value === false || typeof (value as StreamTransport | null)?.run === 'function',
    "'poll', false or stream (from '@changecast/core/sync')",
  ],
  interval: [positive, 'a positive number (ms)'],
  batchSize: [(value: number) => Number.isInteger(value) && value > 0, 'a positive integer'],
  backoff: [
    (value: unknown) =>
      isObject(value) && Object.entries(value).every(([key, ms]) => (key === 'base' || key === 'cap') && positive(ms)),
    '{ base?: ms > 0, cap?: ms > 0 }',
  ],
  scopes: [
    (value: unknown) =>
      Array.isArray(value) && value.length > 0 && value.every((scope) => scope && typeof scope === 'string'),
    'a non-empty list of non-empty strings',
  ],
  users: [(value: UserSwitching | null) => typeof value?.between === 'function', 'userSwitching'],
  setAside: [(value: SetAsideActions | null) => typeof value?.run === 'function', 'setAsideActions'],
}

/** Validates `httpSync()` options, throwing {@link InvalidOptionsError} with what to fix. */
export function resolveOptions(options: unknown): ResolvedOptions {
  if (!isObject(options)) {
    throw new InvalidOptionsError('httpSync(options): options must be an object.')
  }
  const given = { url: '', ...options } as HttpSyncOptions & Record<string, never>
  for (const [key, value] of Object.entries(given)) {
    const [valid, expected] = Object.hasOwn(CHECKS, key) ? CHECKS[key]! : []
    if (!valid)
      throw new InvalidOptionsError(`Unknown httpSync option '${key}'. Known: ${Object.keys(CHECKS).join(', ')}.`)
    if ((value !== undefined || key === 'url') && !valid(value)) {
      throw new InvalidOptionsError(`httpSync(): '${key}' must be ${expected}.`)
    }
  }
  const {
    url,
    headers,
    pull = 'poll',
    interval = 5000,
    batchSize = 50,
    backoff = {},
    scopes = [],
    users,
    setAside,
  } = given
  return {
    base: url.replace(/\/+$/, ''),
    headers,
    pull,
    interval,
    batchSize,
    backoff: { base: 500, cap: 60_000, ...backoff },
    scopeQuery: scopes.map((scope) => `&scope=${encodeURIComponent(scope)}`).join(''),
    users,
    setAside,
  }
}
