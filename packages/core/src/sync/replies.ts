import {
  ProtocolViolation,
  WireError,
  type PullReply,
  type PushReply,
  type RemoteBatch,
  type SnapshotReply,
  type StreamHello,
  type WireChange,
} from './wire.js'
import { checkDepth, decodeWireKey, isRecord, short } from './wire-values.js'

/**
 * Checks of the server's replies, as the client reads them: every field the client relies
 * on, before anything is applied. A reply that fails is a {@link ProtocolViolation}.
 */

const TYPES = new Set(['create', 'update', 'delete'])

export const isRev = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) > 0
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0

function fail(what: string, problem: string): never {
  throw new ProtocolViolation(`Malformed ${what} from the sync server: ${problem}.`)
}

function checkEpoch(body: Record<string, unknown>, what: string): void {
  if (typeof body.epoch !== 'string' || body.epoch === '') fail(what, 'epoch must be a non-empty string')
  const { principal } = body
  if (principal !== undefined && (typeof principal !== 'string' || principal === '' || principal.length > 200)) {
    fail(what, 'principal must be a non-empty string of at most 200 characters')
  }
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
    const { code } = rejection
    if (code !== undefined && (typeof code !== 'string' || code === '' || code.length > 100)) {
      fail(what, `the rejection of rev ${String(rejection.rev)} has a code that is not a short text`)
    }
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
  let last: RemoteBatch | undefined
  for (const item of body.batches as unknown[]) {
    const batch = parseRemoteBatch(item, what)
    // A batch sent twice is tolerated; going back, or another batch under the same rev, is not.
    if (last && batch.rev < last.rev) fail(what, `batch ${batch.rev} comes after batch ${last.rev}`)
    if (last?.rev === batch.rev && (batch.tx !== last.tx || JSON.stringify(batch) !== JSON.stringify(last))) {
      fail(what, `two different batches have revision ${batch.rev}`)
    }
    last = batch
  }
  const lastRev = last?.rev ?? 0
  if (!isCount(body.upTo) || body.upTo < lastRev) fail(what, 'upTo must be a revision at least that of the last batch')
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
