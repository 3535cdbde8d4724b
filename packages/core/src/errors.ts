const brand = Symbol.for('changecast.error')

/** Machine-readable reason of a {@link ChangecastError}. */
export type ChangecastErrorCode =
  | 'invalid-filter'
  | 'invalid-options'
  | 'invalid-state'
  | 'subscriber-failed'
  | 'not-cloneable'
  | 'log-unreadable'
  | 'log-failed'
  | 'history-unavailable'
  | 'sync-failed'

function markChangecast(error: Error, code: ChangecastErrorCode): void {
  Object.defineProperty(error, brand, { value: true })
  Object.defineProperty(error, 'code', { value: code, enumerable: true })
}

/**
 * Base class of every error Changecast throws or reports. `instanceof ChangecastError`
 * is true for all of them, including {@link InvalidFilterError}, which also is a `TypeError`.
 */
export class ChangecastError extends Error {
  declare readonly code: ChangecastErrorCode

  constructor(code: ChangecastErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ChangecastError'
    markChangecast(this, code)
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // The base class recognises every Changecast error (some extend TypeError);
    // subclasses keep the ordinary prototype check.
    if (this === ChangecastError) {
      return typeof value === 'object' && value !== null && brand in value
    }
    return Function.prototype[Symbol.hasInstance].call(this, value)
  }
}

/**
 * A subscription filter or handler is invalid: unknown table, unknown event type,
 * unknown filter field, or a handler that is not a function. Thrown synchronously by
 * `feed.on()`; nothing is subscribed.
 */
export class InvalidFilterError extends TypeError {
  declare readonly code: 'invalid-filter'

  constructor(message: string) {
    super(message)
    this.name = 'InvalidFilterError'
    markChangecast(this, 'invalid-filter')
  }
}

/** Options passed to `changecast()` are invalid. */
export class InvalidOptionsError extends TypeError {
  declare readonly code: 'invalid-options'

  constructor(message: string) {
    super(message)
    this.name = 'InvalidOptionsError'
    markChangecast(this, 'invalid-options')
  }
}

/** Changecast was used at the wrong time, e.g. `changecast(db)` after `db.open()`. */
export class ChangecastStateError extends ChangecastError {
  constructor(message: string) {
    super('invalid-state', message)
    this.name = 'ChangecastStateError'
  }
}

/** A subscriber threw. Reported through `feed.onError()` (or `console.error`); never rethrown into the write. */
export class SubscriberError extends ChangecastError {
  constructor(cause: unknown) {
    super('subscriber-failed', `A Changecast subscriber threw: ${describe(cause)}`, { cause })
    this.name = 'SubscriberError'
  }
}

function describe(value: unknown): string {
  return value instanceof Error ? value.message : String(value)
}

/** Why a {@link SyncError} happened. */
export type SyncErrorReason =
  /** The server could not be reached (network error, connection dropped). */
  | 'network'
  /** The server answered with an error status (`status` says which). */
  | 'http'
  /** The server's answer breaks the sync protocol (malformed, too large, inconsistent). */
  | 'protocol'
  /** A local commit cannot be sent (a value JSON cannot carry, too large, damaged): set aside. */
  | 'not-sendable'
  /** A server batch cannot be applied here (invalid value or key, a failed write): set aside. */
  | 'not-applicable'
  /** The server's log was recreated or went back in time: this client pulls it again. */
  | 'server-reset'
  /** The server refused the credentials twice (401), fresh ones included: waiting for new ones. */
  | 'unauthorized'
  /** The server names another user than the one whose data this device holds: see `signOut()`. */
  | 'principal-changed'
  /** The browser is offline. */
  | 'offline'
  /** Sync is paused (`feed.sync.pause()`). */
  | 'paused'
  /** The database or the feed was closed. */
  | 'closed'

/**
 * A problem with server sync, reported through `feed.sync.onError` or as the rejection of
 * `flush()`. Nothing is lost: the outbox keeps its rows, and a row or batch that can never
 * go through is set aside (`feed.sync.setAside()`) instead of blocking what comes after it.
 */
export class SyncError extends ChangecastError {
  /** What kind of problem this is. */
  readonly reason: SyncErrorReason
  /** HTTP status, when the server answered. */
  readonly status: number | undefined
  /** True when the sync retries by itself; false means it waits for `flush()` or `resume()`. */
  readonly retrying: boolean
  /** The local changelog rev (`not-sendable`) or server revision (`not-applicable`) concerned. */
  readonly rev: number | undefined

  constructor(
    message: string,
    details: { reason: SyncErrorReason; status?: number; retrying: boolean; rev?: number; cause?: unknown },
  ) {
    super('sync-failed', message, { cause: details.cause })
    this.name = 'SyncError'
    this.reason = details.reason
    this.status = details.status
    this.retrying = details.retrying
    this.rev = details.rev
  }
}

/**
 * A committed batch could not be posted to other tabs because a value in it cannot be
 * structured-cloned. The commit and the local events are unaffected; other contexts were
 * told to read the commit from the changelog instead (or to resync without one).
 */
export class NotCloneableError extends ChangecastError {
  /** The transaction whose batch could not be sent. */
  readonly tx: string

  constructor(tx: string, cause: unknown) {
    super(
      'not-cloneable',
      `The batch of transaction ${tx} could not be sent to other tabs (${describe(cause)}): they read it from ` +
        'the changelog. Store only structured-cloneable values.',
      { cause },
    )
    this.name = 'NotCloneableError'
    this.tx = tx
  }
}
