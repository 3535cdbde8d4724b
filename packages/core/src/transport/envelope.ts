import type { ChangeBatch, ChangeEvent } from '../types.js'
import { isValidKey } from './parse-filter.js'

/** Version of the tab-channel message format. */
export const ENVELOPE_VERSION = 1

/**
 * A tab-channel message. `seq` counts the messages of one origin (1, 2, …). It carries
 * either a committed batch, or — when the batch could not be cloned — a notice that
 * tells receivers to read that commit from the changelog.
 */
export type Envelope = {
  v: typeof ENVELOPE_VERSION
  origin: string
  seq: number
  /** The sender's changelog identity: messages of another generation of the database are ignored. */
  log?: string
} & ({ batch: ChangeBatch } | { notice: { tx: string; rev?: number } })

const TYPES = new Set(['create', 'update', 'delete'])

/**
 * Checks a message received on the tab channel. Returns the envelope, or a string that
 * says what is wrong with it. Never throws.
 */
export function validateEnvelope(data: unknown, isTable: (name: string) => boolean): Envelope | string {
  if (!isRecord(data)) return 'not an object'
  if (data.v !== ENVELOPE_VERSION)
    return `unsupported version ${JSON.stringify(data.v) ?? 'undefined'} (expected ${ENVELOPE_VERSION})`
  if (typeof data.origin !== 'string' || data.origin === '') return 'missing origin'
  if (!isPositiveInteger(data.seq)) return 'seq must be a positive integer'
  if (data.log !== undefined && typeof data.log !== 'string') return 'log must be a string'
  if ('notice' in data) {
    const notice = data.notice
    if (!isRecord(notice) || typeof notice.tx !== 'string') return 'malformed notice'
    if (notice.rev !== undefined && !isPositiveInteger(notice.rev)) return 'notice rev must be a positive integer'
    return data as Envelope
  }
  const problem = batchProblem(data.batch, data.origin, isTable)
  return problem ? `malformed batch: ${problem}` : (data as Envelope)
}

function batchProblem(batch: unknown, origin: string, isTable: (name: string) => boolean): string | undefined {
  if (!isRecord(batch)) return 'missing'
  if (typeof batch.tx !== 'string' || batch.tx === '') return 'tx must be a non-empty string'
  if (batch.source !== 'local' && batch.source !== 'remote') return 'source must be local or remote'
  if (typeof batch.origin !== 'string') return 'origin must be a string'
  // A remote batch keeps the origin of the client that made it; a local one is the sender's.
  if (batch.source === 'local' && batch.origin !== origin) return 'origin differs from the envelope'
  if (typeof batch.at !== 'number' || !Number.isFinite(batch.at)) return 'at must be a number'
  if (batch.rev !== undefined && !isPositiveInteger(batch.rev)) return 'rev must be a positive integer'
  if (!Array.isArray(batch.events) || batch.events.length === 0) return 'events must be a non-empty array'
  for (const [i, event] of (batch.events as unknown[]).entries()) {
    const problem = eventProblem(event, isTable)
    if (problem) return `event ${i}: ${problem}`
  }
  return undefined
}

function eventProblem(event: unknown, isTable: (name: string) => boolean): string | undefined {
  if (!isRecord(event)) return 'not an object'
  if (typeof event.type !== 'string' || !TYPES.has(event.type)) return 'unknown type'
  if (typeof event.table !== 'string' || event.table === '') return 'missing table'
  if (!isTable(event.table)) return `table ${JSON.stringify(event.table)} is not captured here`
  if (!isValidKey(event.key)) return 'invalid key'
  if (event.changes !== undefined && !isRecord(event.changes)) return 'changes must be an object'
  return undefined
}

/** The events of a received batch, as seen in this context. */
export function receivedBatch(batch: ChangeBatch): ChangeBatch {
  const source = batch.source === 'remote' ? 'remote' : 'tab'
  const events = batch.events.map((event): ChangeEvent => ({ ...event, source }))
  return { ...batch, source, events }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0
}
