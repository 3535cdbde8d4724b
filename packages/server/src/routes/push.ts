import type { Context } from 'hono'
import { LIMITS, parsePushRequest, ProtocolViolation, readCappedText, type PushBatch } from '@changecast/core/protocol'
import { review } from '../rules.js'
import { ConflictError } from '../store/push.js'
import { accessOf, identify, json, readScopes, TooLargeError, type Server } from './context.js'

/**
 * `POST /push`: reviews each batch (tables, schemas, `authorize`), then stores the request
 * with the others that arrive meanwhile (group commit), and answers acked and rejected.
 */
export async function pushRoute(server: Server, c: Context): Promise<Response> {
  const { tables, authorize, maxBatches = 500 } = server.options
  const text = await pushText(c)
  const body = parsePushRequest(parseBody(text))
  if (body.batches.length > maxBatches) throw new TooLargeError(`at most ${maxBatches} batches per push`)
  const large = body.batches.find((batch) => JSON.stringify(batch).length > LIMITS.batchBytes)
  if (large) throw new TooLargeError(`batch ${large.rev} is over ${LIMITS.batchBytes} bytes`)
  const principal = await identify(server, c.req.raw, body.clientId)
  return server.fairness.during(principal.id, async () => {
    const confirm = body.confirm === true
    const again = (batch: PushBatch) => review(batch, { tables, authorize, principal, clientId: body.clientId })
    const decided = []
    for (const batch of body.batches) {
      // A confirming push stores nothing: there is nothing to review.
      const refusal = confirm ? undefined : await again(batch)
      decided.push({ batch, refusal })
    }
    // Written within the principal's grants; `current` values only of the scopes it reads now.
    const { write } = await accessOf(server, principal)
    const scopes = await readScopes(server, c.req.queries('scope'), principal)
    const access = { read: scopes && new Set(scopes), write, principal: principal.id }
    const outcome = await server.pushes.push(
      { clientId: body.clientId, decided, access, confirm, review: again },
      text.length,
    )
    if (outcome instanceof ConflictError) throw outcome
    if (outcome.appended > 0) server.fanout.announce()
    const reply = { ...outcome.reply, principal: principal.name }
    return json(scopes ? { ...reply, scopes } : reply)
  })
}

/**
 * The push's body, as text. A body parser in front of the handler (Express's `express.json()`)
 * may have read it already: the Node adapter passes on what it parsed (see `nodeListener`),
 * and anywhere else the answer says where to mount the handler.
 */
async function pushText(c: Context): Promise<string> {
  if (c.req.raw.bodyUsed) throw new ProtocolViolation(CONSUMED)
  let text: string
  try {
    text = await readCappedText(
      c.req.raw,
      LIMITS.pushBytes,
      () => new TooLargeError(`the body is over ${LIMITS.pushBytes} bytes`),
    )
  } catch (error) {
    if (error instanceof TooLargeError) throw error
    // "Body is unusable": the stream was read before the request reached the handler.
    if (error instanceof TypeError && /unusable|disturbed|locked/i.test(error.message)) {
      throw new ProtocolViolation(CONSUMED)
    }
    // The client went away while sending it, or sent a broken stream.
    throw new ProtocolViolation(`the body could not be read (${(error as Error)?.message ?? String(error)})`)
  }
  // Announced but empty: something read the stream before the handler got it.
  if (text === '' && Number(c.req.header('content-length')) > 0) throw new ProtocolViolation(CONSUMED)
  return text
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw new ProtocolViolation('the body is not JSON')
  }
}

/** The answer when a body parser in front of the handler read the body. */
export const CONSUMED =
  'the body was already read by a body parser in front of the sync handler: mount the handler before express.json() (or any body parser)'
