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
import { isRecord, isRev, shapeProblem } from './shape.js'
import { checkDepth, decodeWireKey, short } from './wire-values.js'

/**
 * Checks of the server's replies, as the client reads them: every field the client relies
 * on, before anything is applied. A reply that fails is a {@link ProtocolViolation}.
 */

export { isRev }

const TYPES = new Set(['create', 'update', 'delete'])

/** Fields every reply has: its log, its principal, its scoping. */
const COMMON = 'epoch:s principal:p? scopes:L? mustRefetch:b?'

/** Checks `value` against a shape spec (see shape.ts), as a part of `what`. */
function need<T = Record<string, unknown>>(what: string, value: unknown, spec: string, path?: string): T {
  const problem = shapeProblem(value, spec, path)
  if (problem) fail(what, problem)
  return value as T
}

function fail(what: string, problem: string): never {
  throw new ProtocolViolation(`Malformed ${what}: ${problem}.`)
}

/**
 * Checks the shape of a push reply against the revs that were pushed: every rev answered
 * exactly once, nothing else. Values are checked when they are applied.
 */
export function parsePushReply(body: unknown, pushed: readonly number[]): PushReply {
  const what = 'push reply'
  const reply = need<PushReply>(what, body, `${COMMON} acked:l rejected:l`)
  const expected = new Set(pushed)
  const answered = new Set<number>()
  const answer =
    (list: string, spec: string) =>
    (item: unknown, i: number): void => {
      const { rev } = need<{ rev: number }>(what, item, 'rev:r ' + spec, `${list}[${i}]`)
      if (!expected.has(rev)) fail(what, `rev ${rev} was not pushed`)
      if (answered.has(rev)) fail(what, `rev ${rev} is answered twice`)
      answered.add(rev)
    }
  reply.acked.forEach(answer('acked', 'serverRev:r current:l?'))
  reply.rejected.forEach(answer('rejected', 'reason:t code:p? serverRev:c current:l'))
  ;[...reply.acked, ...reply.rejected].forEach(({ rev, current = [] }) =>
    current.forEach((item, j) => {
      const at = `rev ${rev}: current[${j}]`
      need(what, item, 'table:s', at)
      try {
        decodeWireKey(item.key)
      } catch {
        fail(what, `invalid key ${short(item.key)} at ${at}`)
      }
    }),
  )
  const missing = pushed.filter((rev) => !answered.has(rev))
  if (missing.length > 0) fail(what, `revs ${missing.join(', ')} were neither acked nor rejected`)
  return reply
}

/**
 * Checks the envelope of one remote batch. Its changes are checked one by one when the
 * batch is applied, so that a bad change sets that batch aside instead of failing the pull.
 */
export const parseRemoteBatch = (value: unknown, what = 'remote batch'): RemoteBatch =>
  need(what, value, 'rev:r tx:t origin:t at:n changes:l', 'batch')

/** Checks a change of a remote batch; throws {@link WireError} with what is wrong. */
export function checkWireChange(value: unknown): asserts value is WireChange {
  const problem = shapeProblem(value, 'type:s table:s', 'change')
  if (problem) throw new WireError(problem)
  const { type, key, value: stored } = value as WireChange
  if (!TYPES.has(type)) throw new WireError(`unknown change type ${short(type)}`)
  decodeWireKey(key)
  if (type !== 'delete' && stored === undefined) throw new WireError(`a ${type} has no value`)
  checkDepth(stored)
}

/** Checks a pull reply: batches in increasing revision order, up to `upTo`. */
export function parsePullReply(body: unknown): PullReply {
  const what = 'pull reply'
  const reply = need<PullReply>(what, body, `${COMMON} batches:l upTo:c more:b`)
  let last: RemoteBatch | undefined
  for (const item of reply.batches) {
    const batch = parseRemoteBatch(item, what)
    // A batch sent twice is tolerated; going back, or another batch under the same rev, is not.
    if (last && batch.rev < last.rev) fail(what, `batch ${batch.rev} comes after batch ${last.rev}`)
    if (last?.rev === batch.rev && JSON.stringify(batch) !== JSON.stringify(last)) {
      fail(what, `two different batches have revision ${batch.rev}`)
    }
    last = batch
  }
  if (reply.upTo < (last?.rev ?? 0)) fail(what, `upTo must be at least the last batch's revision`)
  return reply
}

/** Checks a snapshot page: its revision, rows (creates and updates) and cursor. */
export function parseSnapshotReply(body: unknown): SnapshotReply {
  const what = 'snapshot page'
  const reply = need<SnapshotReply>(what, body, COMMON)
  if (reply.mustRefetch) return reply
  need(what, body, 'rev:c total:c? next:s? rows:l')
  // Rows are checked one by one when applied: a bad one is reported and skipped.
  reply.rows.forEach((row, i) => {
    if (!isRecord(row) || row.type === 'delete') fail(what, `rows[${i}] is not a create or update`)
  })
  return reply
}

/** Checks the `hello` event that opens a stream. */
export const parseHello = (body: unknown): StreamHello => need('stream hello', body, `${COMMON} head:c`)
