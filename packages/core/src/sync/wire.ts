import type { ChangeType } from '../types.js'
import type { FieldOp } from './merge.js'

/** Version of the sync protocol (docs/protocol.md). */
export const PROTOCOL_VERSION = 2

/** Limits every party keeps (docs/protocol.md, "Limits"). */
export const LIMITS = {
  /** Largest pushed batch (one local commit), as JSON bytes. */
  batchBytes: 4 * 1024 * 1024,
  /** Largest push request body, as JSON bytes. */
  pushBytes: 8 * 1024 * 1024,
  /** Largest reply (push, pull) or stream event a client accepts. */
  replyBytes: 16 * 1024 * 1024,
  /** Deepest nesting of a value (objects and arrays). */
  depth: 64,
  /**
   * Longest table name, and longest key as JSON, in characters (UTF-16 code units, a
   * JavaScript string's length): a server indexes them together.
   */
  tableLength: 64,
  keyLength: 512,
} as const

/**
 * A primary key on the wire: numbers and strings as JSON, compound keys as arrays, and
 * the types JSON lacks as one-field objects: `{"$date": ISO string}`,
 * `{"$bytes": base64}`, `{"$number": "Infinity" | "-Infinity"}`.
 */
export type WireKey =
  number | string | WireKey[] | { $date: string } | { $bytes: string } | { $number: 'Infinity' | '-Infinity' }

/** One change as it travels to and from the server: the entity after the commit. */
export interface WireChange {
  type: ChangeType
  table: string
  key: WireKey
  /** The whole stored object after the change (`create`, `update`). */
  value?: unknown
  /** `update`: changed key paths → new value (informative). */
  changes?: Record<string, unknown>
  /**
   * `update`, merged: the dotted paths it sets, each to its value in `value` (absent there:
   * removed). A server applies them, and `ops`, to its own value (docs/protocol.md, "Merging updates").
   */
  patch?: string[]
  /** `update`, merged: Dexie's modifications by dotted path, re-applied by the server to its value. */
  ops?: Record<string, FieldOp>
}

/** A local commit pushed to the server. `rev` is its changelog rev on this client. */
export interface PushBatch {
  rev: number
  tx: string
  at: number
  changes: WireChange[]
}

/** `POST {url}/push` body. */
export interface PushRequest {
  v: typeof PROTOCOL_VERSION
  clientId: string
  batches: PushBatch[]
  /**
   * A confirming push: the server stores nothing, acks the batches it accepted before and
   * rejects the others with code `unknown` (a client asking what a server restored from a
   * backup still has of its acknowledged commits).
   */
  confirm?: boolean
}

/** The server's state of one entity, sent with a rejection. */
export interface WireCurrent {
  table: string
  key: WireKey
  /** Absent when the entity does not exist on the server. */
  value?: unknown
}

export interface WireRejection {
  rev: number
  /**
   * Why, for machines: `invalid` (a value fails the server's rules), `forbidden` (the principal
   * may not make the change), or another code the server documents. Absent: `rejected`.
   */
  code?: string
  /** Why, for people. */
  reason: string
  /** The server revision `current` was read at. */
  serverRev: number
  current: WireCurrent[]
}

/** `POST {url}/push` reply: every pushed rev is either acked (with its server revision) or rejected. */
export interface PushReply {
  epoch: string
  /** Who the request was made for, as the server names it (absent: a server without authentication). */
  principal?: string
  /**
   * `current`: the entities the batch left outside the request's readable scopes (written
   * into a scope the principal may write but not read), without `value`.
   */
  acked: Array<{ rev: number; serverRev: number; current?: WireCurrent[] }>
  rejected: WireRejection[]
  /** The readable scopes the rejections' `current` values were taken for (absent: every scope). */
  scopes?: string[]
}

/** A committed batch as the server sends it. `rev` is the server revision (total order). */
export interface RemoteBatch {
  rev: number
  tx: string
  origin: string
  at: number
  changes: WireChange[]
}

/** `GET {url}/pull` reply. */
export interface PullReply {
  epoch: string
  /** Who the request was made for, as the server names it (absent: a server without authentication). */
  principal?: string
  batches: RemoteBatch[]
  /** The server revision this page brings the client up to (at least the last batch's). */
  upTo: number
  more: boolean
  /** The scopes the reply covers (absent: every scope). */
  scopes?: string[]
  /** The server compacted its log past `since`: fetch a snapshot instead. */
  mustRefetch?: boolean
}

/** The first event of a stream. */
export interface StreamHello {
  epoch: string
  /** Who the request was made for, as the server names it (absent: a server without authentication). */
  principal?: string
  /** The newest server revision when the stream opened. */
  head: number
  scopes?: string[]
  mustRefetch?: boolean
}

/** `GET {url}/snapshot` reply: one page of the entities of the client's scopes at revision `rev`. */
export interface SnapshotReply {
  epoch: string
  /** Who the request was made for, as the server names it (absent: a server without authentication). */
  principal?: string
  rev: number
  scopes?: string[]
  /** How many entities the whole snapshot holds (first page only). */
  total?: number
  /** Creates and updates, one per entity. */
  rows: WireChange[]
  /** Where the next page starts (absent on the last page). */
  next?: string
  /** The snapshot's revision was compacted away meanwhile: start again. */
  mustRefetch?: boolean
}

/** The server sent something that does not follow the protocol. */
export class ProtocolViolation extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ProtocolViolation'
  }
}

/** A key or value this client cannot put on the wire, or a wire value it cannot take. */
export class WireError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'WireError'
  }
}
