import { SyncError, type SyncErrorReason } from '../errors.js'
import type { SetAsideItem, SyncRejection, SyncStatus } from '../sync-port.js'

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

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
const isText = (value: unknown): value is string => typeof value === 'string' && value !== ''
const isCount = (value: unknown): boolean => Number.isSafeInteger(value) && (value as number) >= 0

const STATES = new Set([
  'idle',
  'pushing',
  'pulling',
  'offline',
  'unauthorized',
  'principal-changed',
  'signed-out',
  'error',
  'closed',
])

function isError(value: unknown): value is ErrorInfo {
  return (
    isRecord(value) && typeof value.message === 'string' && isText(value.reason) && typeof value.retrying === 'boolean'
  )
}

function isStatus(value: unknown): value is SyncStatus {
  return (
    isRecord(value) &&
    STATES.has(value.state as string) &&
    ['outbox', 'setAside', 'rejections', 'lastSyncedRev', 'serverRev'].every((field) => isCount(value[field])) &&
    typeof value.paused === 'boolean' &&
    (value.lastError === undefined || isRecord(value.lastError))
  )
}

function isRequest(value: unknown): value is Request {
  if (!isRecord(value)) return false
  if (value.name === 'flush') return isCount(value.attempts)
  if (value.name === 'signOut') return typeof value.discard === 'boolean'
  if (value.name === 'discardPending') return true
  return (
    (value.name === 'retry' || value.name === 'drop') &&
    (value.kind === 'push' || value.kind === 'apply') &&
    isCount(value.rev)
  )
}

/** Checks a message from another context; returns undefined (after a warning) for anything malformed. */
export function parseMessage(data: unknown): Message | undefined {
  const ok =
    isRecord(data) &&
    (data.type === 'hello' || data.type === 'pause' || data.type === 'resume' || data.type === 'inbox'
      ? isText(data.from)
      : data.type === 'status'
        ? isText(data.from) && isStatus(data.status)
        : data.type === 'request'
          ? isText(data.from) && isText(data.id) && isRequest(data.request)
          : data.type === 'reply'
            ? isText(data.to) && isText(data.id) && (data.error === undefined || isError(data.error))
            : data.type === 'rejected'
              ? isRecord(data.rejection) &&
                isCount(data.rejection.rev) &&
                typeof data.rejection.reason === 'string' &&
                Array.isArray(data.rejection.current)
              : data.type === 'error' && isError(data.error))
  if (ok) return data as Message
  console.warn('[changecast] Ignored a malformed message on the sync channel.')
  return undefined
}

export function toErrorInfo(error: SyncError): ErrorInfo {
  const info: ErrorInfo = { message: error.message, reason: error.reason, retrying: error.retrying }
  if (error.status !== undefined) info.status = error.status
  if (error.rev !== undefined) info.rev = error.rev
  return info
}

export const fromErrorInfo = ({ message, ...details }: ErrorInfo): SyncError => new SyncError(message, details)
