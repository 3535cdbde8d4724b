import { isValidKey } from '../transport/parse-filter.js'
import type { ChangeType } from '../types.js'

/** Version of the sync protocol (see docs/protocol.md). */
export const PROTOCOL_VERSION = 1

/** One change as it travels to and from the server. */
export interface WireChange {
  type: ChangeType
  table: string
  key: unknown
  /** The stored object after the change (`create`, `update`). */
  value?: unknown
  /** `update`: changed key paths → new value. */
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

/** The server's current state of one entity, sent with a rejection. */
export interface CurrentValue {
  table: string
  key: unknown
  /** Absent when the entity does not exist on the server. */
  value?: unknown
}

export interface Rejection {
  rev: number
  reason: string
  current?: CurrentValue[]
}

/** `POST {url}/push` reply: every pushed rev is either acked or rejected. */
export interface PushReply {
  acked: number[]
  rejected: Rejection[]
  cursor?: string
}

/** A committed batch as the server sends it. `rev` is the server's revision (total order). */
export interface RemoteBatch {
  rev: number
  tx: string
  origin: string
  at: number
  changes: WireChange[]
}

/** `GET {url}/pull` reply. */
export interface PullReply {
  batches: RemoteBatch[]
  cursor: string
  more: boolean
}

/** The server sent something that does not follow the protocol. */
export class ProtocolViolation extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ProtocolViolation'
  }
}

const TYPES = new Set(['create', 'update', 'delete'])

function fail(what: string, problem: string): never {
  throw new ProtocolViolation(`Malformed ${what} from the sync server: ${problem}.`)
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
const isRev = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value > 0

function change(value: unknown, what: string): WireChange {
  if (!isRecord(value)) fail(what, 'a change is not an object')
  if (typeof value.type !== 'string' || !TYPES.has(value.type)) fail(what, `unknown change type ${String(value.type)}`)
  if (typeof value.table !== 'string' || value.table === '') fail(what, 'a change has no table')
  if (!isValidKey(value.key)) fail(what, 'a change has an invalid key')
  if (value.type !== 'delete' && value.value === undefined) fail(what, `a ${value.type} has no value`)
  if (value.changes !== undefined && !isRecord(value.changes)) fail(what, 'changes must be an object')
  return value as unknown as WireChange
}

/** Checks a push reply against the revs that were pushed. */
export function parsePushReply(body: unknown, pushed: readonly number[]): PushReply {
  const what = 'push reply'
  if (!isRecord(body)) fail(what, 'not a JSON object')
  if (!Array.isArray(body.acked) || !body.acked.every(isRev)) fail(what, 'acked must be a list of revs')
  if (!Array.isArray(body.rejected)) fail(what, 'rejected must be a list')
  for (const rejection of body.rejected as unknown[]) {
    if (!isRecord(rejection) || !isRev(rejection.rev)) fail(what, 'a rejection has no rev')
    if (typeof rejection.reason !== 'string') fail(what, 'a rejection has no reason')
    if (rejection.current !== undefined) {
      if (!Array.isArray(rejection.current)) fail(what, 'current must be a list')
      for (const current of rejection.current as unknown[]) {
        if (!isRecord(current) || typeof current.table !== 'string' || !isValidKey(current.key)) {
          fail(what, 'a current value has no table or key')
        }
      }
    }
  }
  const answered = new Set([...body.acked, ...(body.rejected as Rejection[]).map((r) => r.rev)])
  const missing = pushed.filter((rev) => !answered.has(rev))
  if (missing.length > 0) fail(what, `revs ${missing.join(', ')} were neither acked nor rejected`)
  if (body.cursor !== undefined && typeof body.cursor !== 'string') fail(what, 'cursor must be a string')
  return body as unknown as PushReply
}

/** Checks one remote batch (from a pull reply or a stream event). */
export function parseRemoteBatch(value: unknown, what = 'remote batch'): RemoteBatch {
  if (!isRecord(value)) fail(what, 'a batch is not an object')
  if (!isRev(value.rev)) fail(what, 'a batch has no rev')
  if (typeof value.tx !== 'string' || typeof value.origin !== 'string') fail(what, 'a batch has no tx or origin')
  if (typeof value.at !== 'number') fail(what, 'a batch has no time')
  if (!Array.isArray(value.changes)) fail(what, 'a batch has no changes')
  for (const item of value.changes as unknown[]) change(item, what)
  return value as unknown as RemoteBatch
}

/** Checks a pull reply. */
export function parsePullReply(body: unknown): PullReply {
  const what = 'pull reply'
  if (!isRecord(body)) fail(what, 'not a JSON object')
  if (!Array.isArray(body.batches)) fail(what, 'batches must be a list')
  for (const batch of body.batches as unknown[]) parseRemoteBatch(batch, what)
  if (typeof body.cursor !== 'string') fail(what, 'cursor must be a string')
  if (typeof body.more !== 'boolean') fail(what, 'more must be a boolean')
  return body as unknown as PullReply
}
