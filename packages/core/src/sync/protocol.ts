import type { IndexableType } from 'dexie'
import type { ChangeType } from '../types.js'

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
  reason: string
  /** The server revision `current` was read at. */
  serverRev: number
  current: WireCurrent[]
}

/** `POST {url}/push` reply: every pushed rev is either acked (with its server revision) or rejected. */
export interface PushReply {
  epoch: string
  acked: Array<{ rev: number; serverRev: number }>
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
  /** The newest server revision when the stream opened. */
  head: number
  scopes?: string[]
  mustRefetch?: boolean
}

/** `GET {url}/snapshot` reply: one page of the entities of the client's scopes at revision `rev`. */
export interface SnapshotReply {
  epoch: string
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

// ---- keys -------------------------------------------------------------------------------

/** An IndexedDB key as a {@link WireKey}. */
export function encodeWireKey(key: unknown, depth = 0): WireKey {
  if (typeof key === 'string') return key
  if (typeof key === 'number') {
    if (Number.isFinite(key)) return key
    if (key === Infinity || key === -Infinity) return { $number: key > 0 ? 'Infinity' : '-Infinity' }
  } else if (key instanceof Date) {
    if (!Number.isNaN(key.getTime())) return { $date: key.toISOString() }
  } else if (Array.isArray(key) && depth < LIMITS.depth) {
    return key.map((part) => encodeWireKey(part, depth + 1))
  } else if (key instanceof ArrayBuffer || ArrayBuffer.isView(key)) {
    const bytes =
      key instanceof ArrayBuffer ? new Uint8Array(key) : new Uint8Array(key.buffer, key.byteOffset, key.byteLength)
    let binary = ''
    for (const byte of bytes) binary += String.fromCharCode(byte)
    return { $bytes: btoa(binary) }
  }
  throw new WireError(`${String(key)} is not a valid key`)
}

/** A {@link WireKey} as an IndexedDB key. Throws {@link WireError} for anything else. */
export function decodeWireKey(wire: unknown, depth = 0): IndexableType {
  if (typeof wire === 'string') return wire
  if (typeof wire === 'number' && Number.isFinite(wire)) return wire
  if (Array.isArray(wire) && depth < LIMITS.depth)
    return wire.map((part) => decodeWireKey(part, depth + 1)) as IndexableType
  if (isRecord(wire)) {
    const fields = Object.keys(wire)
    if (fields.length === 1) {
      const { $date, $bytes, $number } = wire
      if (typeof $date === 'string') {
        const date = new Date($date)
        if (!Number.isNaN(date.getTime())) return date
      }
      if (typeof $bytes === 'string') {
        try {
          return Uint8Array.from(atob($bytes), (char) => char.charCodeAt(0)).buffer
        } catch {
          // not base64: falls through to the error below
        }
      }
      if ($number === 'Infinity' || $number === '-Infinity') return $number === 'Infinity' ? Infinity : -Infinity
    }
  }
  throw new WireError(`${short(wire)} is not a valid key`)
}

// ---- values -----------------------------------------------------------------------------

/**
 * Checks that JSON carries `value` faithfully and returns it as it will arrive (dates as
 * ISO strings, which JSON does anyway). Throws {@link WireError} with the path of the first
 * value JSON would lose or refuse: a bigint, a cycle, a Map, a Set, binary data, a
 * number that is not finite, or nesting deeper than the protocol allows.
 */
export function checkWireValue(value: unknown, path = 'value', depth = 0, parents: unknown[] = []): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || value === undefined) return
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new WireError(`${path} is ${value}, which JSON cannot carry`)
    return
  }
  if (typeof value !== 'object') throw new WireError(`${path} is a ${typeof value}, which JSON cannot carry`)
  if (value instanceof Date) return
  if (depth >= LIMITS.depth) throw new WireError(`${path} is nested deeper than ${LIMITS.depth} levels`)
  if (parents.includes(value)) throw new WireError(`${path} refers back to itself (a cycle)`)
  const proto: unknown = Object.getPrototypeOf(value)
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) {
    throw new WireError(`${path} is a ${value.constructor?.name ?? 'non-plain object'}, which JSON cannot carry`)
  }
  parents.push(value)
  for (const [name, item] of Object.entries(value)) checkWireValue(item, `${path}.${name}`, depth + 1, parents)
  parents.pop()
}

/** Throws {@link WireError} when a value read from the network nests deeper than the protocol allows. */
export function checkDepth(value: unknown): void {
  // Iterative, so a hostile value cannot exhaust the stack.
  const stack: Array<[unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!
    if (typeof item !== 'object' || item === null) continue
    if (depth >= LIMITS.depth) throw new WireError(`a value is nested deeper than ${LIMITS.depth} levels`)
    for (const child of Object.values(item)) stack.push([child, depth + 1])
  }
}

// ---- replies ----------------------------------------------------------------------------

const TYPES = new Set(['create', 'update', 'delete'])

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
const isRev = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) > 0
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0
const short = (value: unknown): string => (JSON.stringify(value) ?? String(value)).slice(0, 60)

function fail(what: string, problem: string): never {
  throw new ProtocolViolation(`Malformed ${what} from the sync server: ${problem}.`)
}

function checkEpoch(body: Record<string, unknown>, what: string): void {
  if (typeof body.epoch !== 'string' || body.epoch === '') fail(what, 'epoch must be a non-empty string')
}

function checkKey(key: unknown, what: string): void {
  try {
    decodeWireKey(key)
  } catch {
    fail(what, `invalid key ${short(key)}`)
  }
}

/**
 * Checks the shape of a push reply against the revs that were pushed: every rev answered
 * exactly once, nothing else. Values are checked when they are applied.
 */
export function parsePushReply(body: unknown, pushed: readonly number[]): PushReply {
  const what = 'push reply'
  if (!isRecord(body)) fail(what, 'not a JSON object')
  checkEpoch(body, what)
  checkScoping(body, what)
  if (!Array.isArray(body.acked)) fail(what, 'acked must be a list')
  if (!Array.isArray(body.rejected)) fail(what, 'rejected must be a list')
  const expected = new Set(pushed)
  const answered = new Set<number>()
  const answer = (rev: unknown): void => {
    if (!isRev(rev)) fail(what, `${short(rev)} is not a rev`)
    if (!expected.has(rev)) fail(what, `rev ${rev} was not pushed`)
    if (answered.has(rev)) fail(what, `rev ${rev} is answered twice`)
    answered.add(rev)
  }
  for (const ack of body.acked as unknown[]) {
    if (!isRecord(ack)) fail(what, 'an ack is not an object')
    answer(ack.rev)
    if (!isRev(ack.serverRev)) fail(what, `the ack of rev ${String(ack.rev)} has no serverRev`)
  }
  for (const rejection of body.rejected as unknown[]) {
    if (!isRecord(rejection)) fail(what, 'a rejection is not an object')
    answer(rejection.rev)
    if (typeof rejection.reason !== 'string') fail(what, `the rejection of rev ${String(rejection.rev)} has no reason`)
    if (!isCount(rejection.serverRev)) fail(what, `the rejection of rev ${String(rejection.rev)} has no serverRev`)
    if (!Array.isArray(rejection.current)) fail(what, 'current must be a list')
    for (const current of rejection.current as unknown[]) {
      if (!isRecord(current) || typeof current.table !== 'string') fail(what, 'a current value has no table')
      checkKey(current.key, what)
    }
  }
  const missing = pushed.filter((rev) => !answered.has(rev))
  if (missing.length > 0) fail(what, `revs ${missing.join(', ')} were neither acked nor rejected`)
  return body as unknown as PushReply
}

/**
 * Checks the envelope of one remote batch. Its changes are checked one by one when the
 * batch is applied, so that a bad change sets that batch aside instead of failing the pull.
 */
export function parseRemoteBatch(value: unknown, what = 'remote batch'): RemoteBatch {
  if (!isRecord(value)) fail(what, 'a batch is not an object')
  if (!isRev(value.rev)) fail(what, 'a batch has no rev')
  if (typeof value.tx !== 'string' || typeof value.origin !== 'string') fail(what, 'a batch has no tx or origin')
  if (typeof value.at !== 'number') fail(what, 'a batch has no time')
  if (!Array.isArray(value.changes)) fail(what, 'a batch has no changes')
  return value as unknown as RemoteBatch
}

/** Checks a change of a remote batch; throws {@link WireError} with what is wrong. */
export function checkWireChange(value: unknown): asserts value is WireChange {
  if (!isRecord(value)) throw new WireError('a change is not an object')
  if (typeof value.type !== 'string' || !TYPES.has(value.type))
    throw new WireError(`unknown change type ${short(value.type)}`)
  if (typeof value.table !== 'string' || value.table === '') throw new WireError('a change has no table')
  decodeWireKey(value.key)
  if (value.type !== 'delete' && value.value === undefined) throw new WireError(`a ${value.type} has no value`)
  checkDepth(value.value)
}

/** Checks a pull reply: batches in increasing revision order, up to `upTo`. */
export function parsePullReply(body: unknown): PullReply {
  const what = 'pull reply'
  if (!isRecord(body)) fail(what, 'not a JSON object')
  checkEpoch(body, what)
  if (!Array.isArray(body.batches)) fail(what, 'batches must be a list')
  let last = 0
  for (const item of body.batches as unknown[]) {
    const batch = parseRemoteBatch(item, what)
    // Equal revs are tolerated (a batch sent twice); going back is not.
    if (batch.rev < last) fail(what, `batch ${batch.rev} comes after batch ${last}`)
    last = batch.rev
  }
  if (!isCount(body.upTo) || body.upTo < last) fail(what, 'upTo must be a revision at least that of the last batch')
  if (typeof body.more !== 'boolean') fail(what, 'more must be a boolean')
  checkScoping(body, what)
  return body as unknown as PullReply
}

/** `scopes` (a list of strings, when present) and `mustRefetch` (a boolean, when present). */
function checkScoping(body: Record<string, unknown>, what: string): void {
  const { scopes, mustRefetch } = body
  if (scopes !== undefined && !(Array.isArray(scopes) && scopes.every((scope) => typeof scope === 'string'))) {
    fail(what, 'scopes must be a list of strings')
  }
  if (mustRefetch !== undefined && typeof mustRefetch !== 'boolean') fail(what, 'mustRefetch must be a boolean')
}

/** Checks a snapshot page: its revision, rows (creates and updates) and cursor. */
export function parseSnapshotReply(body: unknown): SnapshotReply {
  const what = 'snapshot page'
  if (!isRecord(body)) fail(what, 'not a JSON object')
  checkEpoch(body, what)
  checkScoping(body, what)
  if (body.mustRefetch === true) return body as unknown as SnapshotReply
  if (!isCount(body.rev)) fail(what, 'rev must be a revision')
  if (body.total !== undefined && !isCount(body.total)) fail(what, 'total must be a count')
  if (body.next !== undefined && (typeof body.next !== 'string' || body.next === '')) {
    fail(what, 'next must be a non-empty string')
  }
  if (!Array.isArray(body.rows)) fail(what, 'rows must be a list')
  for (const row of body.rows as unknown[]) {
    if (!isRecord(row) || row.type === 'delete') fail(what, 'a row is not a create or update')
  }
  // Rows are checked one by one when applied: a bad one is reported and skipped.
  return body as unknown as SnapshotReply
}

/** Checks the `hello` event that opens a stream. */
export function parseHello(body: unknown): StreamHello {
  const what = 'stream hello'
  if (!isRecord(body)) fail(what, 'not a JSON object')
  checkEpoch(body, what)
  if (!isCount(body.head)) fail(what, 'head must be a revision')
  checkScoping(body, what)
  return body as unknown as StreamHello
}

// ---- requests (for servers) ------------------------------------------------------------

/**
 * Checks a push request body as a server receives it, throwing {@link ProtocolViolation}
 * with what is wrong (answer it with 400). Keys are checked; values only for their depth.
 */
export function parsePushRequest(body: unknown): PushRequest {
  const what = 'push request'
  const bad = (problem: string): never => {
    throw new ProtocolViolation(`Malformed ${what}: ${problem}.`)
  }
  if (!isRecord(body)) bad('the body is not a JSON object')
  const request = body as Record<string, unknown>
  if (request.v !== PROTOCOL_VERSION)
    bad(`unsupported protocol version ${short(request.v)} (this server speaks ${PROTOCOL_VERSION})`)
  if (typeof request.clientId !== 'string' || request.clientId === '' || request.clientId.length > 200) {
    bad('clientId must be a non-empty string of at most 200 characters')
  }
  if (!Array.isArray(request.batches)) bad('batches must be a list')
  const seen = new Set<number>()
  ;(request.batches as unknown[]).forEach((batch, i) => {
    if (!isRecord(batch)) bad(`batch ${i} is not an object`)
    const { rev, tx, at, changes } = batch as Record<string, unknown>
    if (!isRev(rev)) bad(`batch ${i} has no rev (a positive integer)`)
    if (seen.has(rev as number)) bad(`rev ${String(rev)} appears twice`)
    seen.add(rev as number)
    if (typeof tx !== 'string' || tx === '') bad(`batch ${i} has no tx`)
    if (typeof at !== 'number' || !Number.isFinite(at)) bad(`batch ${i} has no time (at)`)
    if (!Array.isArray(changes)) bad(`batch ${i} has no list of changes`)
    ;(changes as unknown[]).forEach((change, j) => {
      try {
        checkWireChange(change)
      } catch (error) {
        bad(`change ${j} of batch ${i}: ${(error as Error).message}`)
      }
    })
  })
  return body as PushRequest
}

/**
 * Canonical text of a wire key, for servers that index entities by it: two keys get the
 * same text exactly when they are the same IndexedDB key (`1` and `1.0`, or two spellings
 * of one date, included). Throws {@link WireError} for an invalid key.
 */
export function wireKeyText(key: unknown): string {
  return JSON.stringify(encodeWireKey(decodeWireKey(key)))
}

/**
 * A request's or reply's body as text, refusing more than `limit` bytes — by its
 * Content-Length, and while reading it, so an oversized body is never held in memory:
 * `tooLarge()` is thrown and the rest is not read. Used by the client and the server alike.
 */
export async function readCappedText(
  message: Request | Response,
  limit: number,
  tooLarge: () => Error,
): Promise<string> {
  const { body } = message
  if (Number(message.headers.get('content-length')) > limit) {
    void body?.cancel().catch(() => undefined)
    throw tooLarge()
  }
  if (!body) return ''
  const reader = body.getReader()
  const decoder = new TextDecoder()
  const parts: string[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      void reader.cancel().catch(() => undefined)
      throw tooLarge()
    }
    parts.push(decoder.decode(value, { stream: true }))
  }
  parts.push(decoder.decode())
  return parts.join('')
}
