import { patchProblem } from './merge.js'
import { checkWireChange, isRev } from './replies.js'
import { LIMITS, PROTOCOL_VERSION, ProtocolViolation, type PushRequest } from './wire.js'
import { decodeWireKey, encodeWireKey, isRecord, short } from './wire-values.js'

/** What servers check of requests, and reading a body within a limit (client and server alike). */

// Control characters: a text column cannot hold NUL, and none belongs in a name.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/

/** A client id or a tx as the protocol allows them: 1–200 characters, none a control character. */
export const isName = (value: unknown): value is string =>
  typeof value === 'string' && value !== '' && value.length <= 200 && !CONTROL.test(value)

/** What {@link isName} asks of `what`, for a 400's message. */
export const nameRule = (what: string): string => `${what} must have 1–200 characters, none a control character`

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
  if (!isName(request.clientId)) bad(nameRule('clientId'))
  if (!Array.isArray(request.batches)) bad('batches must be a list')
  if (request.confirm !== undefined && typeof request.confirm !== 'boolean') bad('confirm must be true or false')
  const seen = new Set<number>()
  ;(request.batches as unknown[]).forEach((batch, i) => {
    if (!isRecord(batch)) bad(`batch ${i} is not an object`)
    const { rev, tx, at, changes } = batch as Record<string, unknown>
    if (!isRev(rev)) bad(`batch ${i} has no rev (a positive integer)`)
    if (seen.has(rev as number)) bad(`rev ${String(rev)} appears twice`)
    seen.add(rev as number)
    if (!isName(tx)) bad(nameRule(`the tx of batch ${i}`))
    if (typeof at !== 'number' || !Number.isFinite(at)) bad(`batch ${i} has no time (at)`)
    if (!Array.isArray(changes)) bad(`batch ${i} has no list of changes`)
    ;(changes as unknown[]).forEach((change, j) => {
      try {
        checkWireChange(change)
      } catch (error) {
        bad(`change ${j} of batch ${i}: ${(error as Error).message}`)
      }
      const problem = patchProblem(change as Record<string, unknown>)
      if (problem) bad(`change ${j} of batch ${i}: ${problem}`)
      const { table, key } = change as { table: string; key: unknown }
      if (table.length > LIMITS.tableLength || CONTROL.test(table)) {
        bad(
          `change ${j} of batch ${i}: a table name has at most ${LIMITS.tableLength} characters, none a control character`,
        )
      }
      if (JSON.stringify(key).length > LIMITS.keyLength) {
        bad(`change ${j} of batch ${i}: a key has at most ${LIMITS.keyLength} characters as JSON`)
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
 * A revision as a query writes it (`since`, `rev`): decimal digits, without sign, exponent,
 * fraction or leading zero; undefined for anything else (empty, `0x10`, `1e3`, `-1`).
 */
export function parseRevision(text: string | null | undefined): number | undefined {
  if (text == null || !/^(0|[1-9][0-9]*)$/.test(text)) return undefined
  const rev = Number(text)
  return Number.isSafeInteger(rev) ? rev : undefined
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
