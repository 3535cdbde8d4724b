import { SyncError, type SyncErrorReason } from '../errors.js'
import type { SetAsideItem, SyncRejection, SyncStatus } from '../sync-port.js'
import { isRecord, shapeProblem } from './shape.js'

/** What a context asks of the leader. */
export type Request =
  | { name: 'flush'; attempts: number }
  | { name: 'retry' | 'drop'; kind: SetAsideItem['kind']; rev: number }
  | { name: 'signOut'; discard: boolean }
  | { name: 'discardPending' }

/** A {@link SyncError} as it crosses contexts. */
export interface ErrorInfo {
  message: string
  reason: SyncErrorReason
  status?: number
  retrying: boolean
  rev?: number
}

/** Messages between the contexts of one database, on `changecast-sync:{name}`. */
export type Message =
  | { type: 'hello'; from: string }
  | { type: 'status'; from: string; status: SyncStatus }
  | { type: 'request'; from: string; id: string; request: Request }
  | { type: 'reply'; to: string; id: string; error?: ErrorInfo }
  | { type: 'rejected'; rejection: SyncRejection }
  | { type: 'error'; error: ErrorInfo }
  | { type: 'pause' | 'resume' | 'inbox'; from: string }

const ERROR = 'message:t reason:s retrying:b'
const FROM: Array<[string, string]> = [['', 'from:s']]

/** Each message type: the shape of the message, then of its parts (see shape.ts). */
const MESSAGES = new Map<unknown, Array<[string, string]>>([
  ['hello', FROM],
  ['pause', FROM],
  ['resume', FROM],
  ['inbox', FROM],
  [
    'status',
    [
      ['', 'from:s status:o'],
      ['status', 'state:s outbox:c setAside:c rejections:c lastSyncedRev:c serverRev:c paused:b lastError:o?'],
    ],
  ],
  ['request', [['', 'from:s id:s request:o']]],
  [
    'reply',
    [
      ['', 'to:s id:s error:o?'],
      ['error', ERROR],
    ],
  ],
  [
    'rejected',
    [
      ['', 'rejection:o'],
      ['rejection', 'rev:c reason:t current:l'],
    ],
  ],
  [
    'error',
    [
      ['', 'error:o'],
      ['error', ERROR],
    ],
  ],
])

/** Each request: its shape. */
const REQUESTS = new Map<unknown, string>([
  ['flush', 'attempts:c'],
  ['signOut', 'discard:b'],
  ['discardPending', 'name:s'],
  ['retry', 'rev:c'],
  ['drop', 'rev:c'],
])

/** Checks a message from another context; returns undefined (after a warning) for anything malformed. */
export function parseMessage(data: unknown): Message | undefined {
  const message = (isRecord(data) ? data : {}) as Record<string, Record<string, unknown> | undefined>
  const { request } = message
  const requestSpec = REQUESTS.get(request?.name)
  const kind = request?.kind
  if (
    MESSAGES.get(message.type)?.every(([part, spec]) => {
      const item = part ? message[part] : data
      return item === undefined || !shapeProblem(item, spec)
    }) &&
    (!request ||
      (requestSpec &&
        !shapeProblem(request, requestSpec) &&
        (kind === undefined
          ? request.name !== 'retry' && request.name !== 'drop'
          : kind === 'push' || kind === 'apply')))
  ) {
    return data as Message
  }
  console.warn('[changecast] Ignored a malformed sync channel message.')
  return undefined
}

export function toErrorInfo(error: SyncError): ErrorInfo {
  const info: ErrorInfo = { message: error.message, reason: error.reason, retrying: error.retrying }
  if (error.status !== undefined) info.status = error.status
  if (error.rev !== undefined) info.rev = error.rev
  return info
}

export const fromErrorInfo = ({ message, ...details }: ErrorInfo): SyncError => new SyncError(message, details)
