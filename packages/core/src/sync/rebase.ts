import type { IndexableType } from 'dexie'
import { LOG_TABLE, type LogRow } from '../log/changelog.js'
import { cloneValue } from '../util/clone.js'
import { entityChange, type EntityChange, type SyncContext } from './context.js'
import { applyPatch, withPatch } from './merge.js'
import { keyId } from './store.js'

/**
 * The local value of an entity whose local writes wait for the server's answer, over the
 * server's newer value `base`: those writes re-applied to it in commit order, path by path
 * and operation by operation, as the server will merge them (docs/protocol.md, client rule
 * 6). Undefined when that cannot be done — a pending write replaces or deletes the whole
 * value, its table replaces, the server has no value, a patch does not fit — and then the
 * local value stays as it is. Call inside a sync transaction (it reads the changelog).
 */
export async function rebase(
  ctx: SyncContext,
  table: string,
  key: IndexableType,
  id: string,
  base: { value?: unknown } | undefined,
  except?: ReadonlySet<number>,
): Promise<EntityChange | undefined> {
  if (base?.value === undefined || ctx.options.merge[table] === 'replace') return
  const rows = await ctx.db.table<LogRow, number>(LOG_TABLE).bulkGet(ctx.pending.revsOf(id, except))
  const value = cloneValue(base.value) as Record<string, unknown>
  try {
    for (const row of rows) {
      for (const change of row!.changes) {
        if (keyId(change.table, change.key) !== id) continue
        const wire: { value?: unknown; patch?: string[]; ops?: LogRow['changes'][number]['ops'] } = {
          value: change.value,
        }
        if (change.type === 'update' && change.ops) withPatch(wire, change.changes!, change.ops)
        if (!wire.patch) return
        applyPatch(value, change.value, wire.patch, wire.ops)
      }
    }
  } catch {
    // A commit no longer in the changelog, or a patch that does not fit: the local value stays.
    return
  }
  return entityChange(table, key, id, value)
}
