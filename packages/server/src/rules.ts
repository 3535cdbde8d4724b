import type { StandardSchemaV1 } from '@standard-schema/spec'
import type { PushBatch, WireChange } from '@changecast/core/protocol'
import type { Principal } from './auth.js'

/** How the server treats one table. */
export interface TableRules {
  /**
   * A Standard Schema validator (zod, valibot, arktype…) every stored value must pass — for a
   * merged update, the merged value. It checks; it does not transform: the value is stored as
   * the client sent it, or as merged (a different stored value would leave the client with
   * something else than the server).
   */
  schema?: StandardSchemaV1
  /**
   * `'replace'`: an update replaces the whole value even when the client sent it as a patch
   * (the last accepted write wins per entity). @default 'fields': patches merge into the
   * server's value (docs/protocol.md, "Merging updates").
   */
  merge?: 'fields' | 'replace'
}

/** What `authorize` is asked about: one change of a pushed batch. */
export interface AuthorizeContext {
  principal: Principal
  clientId: string
  /**
   * The change. A merged update (with `patch`) is asked about again, with the merged `value`,
   * when merging made it other than what the client sent: what is stored has been authorized.
   */
  change: WireChange
}

/**
 * Allows a change (return `true` or nothing) or refuses it with a reason (a string): the
 * whole batch is then rejected, and the client gets the server's current values back.
 */
export type Authorize = (context: AuthorizeContext) => boolean | string | void | Promise<boolean | string | void>

/** A change to a table the server does not sync (answered 400: the client's schema and the server's disagree). */
export class UnknownTableError extends Error {
  constructor(table: string) {
    super(`table ${JSON.stringify(table)} is not synced by this server`)
    this.name = 'UnknownTableError'
  }
}

/**
 * Why a batch is refused: a machine-readable `code` (`invalid`: a value fails the rules;
 * `forbidden`: the principal may not make the change) and a `reason` for people.
 */
export interface Refusal {
  /**
   * `unknown`: a confirming push names a commit this server has no record of. `gone`: a merged
   * update of an entity the server no longer has. `unmergeable`: a merged update that does not
   * fit the server's value (a path through something else than an object, an operation on
   * another type).
   */
  code: 'invalid' | 'forbidden' | 'unknown' | 'gone' | 'unmergeable'
  reason: string
  /** What the server's log says, never the client: e.g. the scope of an entity it may not read. */
  detail?: string
}

/**
 * Decides on each batch before it is stored: every change must be to a known table (when
 * `tables` is given), pass its table's schema, and be authorized. Returns why a batch is
 * refused, or undefined.
 */
export async function review(
  batch: PushBatch,
  {
    tables,
    authorize,
    principal,
    clientId,
  }: { tables?: Record<string, TableRules>; authorize?: Authorize; principal: Principal; clientId: string },
): Promise<Refusal | undefined> {
  for (const change of batch.changes) {
    // Only the list's own entries: a table named `constructor` or `__proto__` is not in it.
    const rules = tables && Object.hasOwn(tables, change.table) ? tables[change.table] : undefined
    if (tables && !rules) throw new UnknownTableError(change.table)
    if (rules?.schema && change.type !== 'delete') {
      const result = await rules.schema['~standard'].validate(change.value)
      if (result.issues) {
        return { code: 'invalid', reason: `${change.table} ${JSON.stringify(change.key)}: ${describe(result.issues)}` }
      }
    }
    if (authorize) {
      const verdict = await authorize({ principal, clientId, change })
      if (typeof verdict === 'string') return { code: 'forbidden', reason: verdict }
      if (verdict === false) {
        return {
          code: 'forbidden',
          reason: `not allowed to ${change.type} ${change.table} ${JSON.stringify(change.key)}`,
        }
      }
    }
  }
  return undefined
}

function describe(issues: readonly StandardSchemaV1.Issue[]): string {
  return issues
    .map((issue) => {
      const path = issue.path?.map((part) => (typeof part === 'object' ? String(part.key) : String(part))).join('.')
      return path ? `${path}: ${issue.message}` : issue.message
    })
    .join('; ')
}

/** The tables whose rules say `merge: 'replace'`. */
export const replacedTables = (tables: Record<string, TableRules> | undefined): Set<string> =>
  new Set(Object.entries(tables ?? {}).flatMap(([name, rules]) => (rules.merge === 'replace' ? [name] : [])))
