import type { IndexableType } from 'dexie'
import { LOG_TABLE, type LogRow } from '../log/changelog.js'
import { entityChange, type EntityChange, type SyncContext } from './context.js'
import { Dexie, PropModification } from '../util/dexie.js'
import { keyId } from './store.js'

/**
 * The local value of an entity whose local writes wait for the server's answer, over the
 * server's newer value `base`: those writes re-applied to it in commit order, path by path
 * and operation by operation, as the server will merge them (docs/protocol.md, client rule
 * 6). Undefined when that cannot be done — a pending write replaces or deletes the whole
 * value, the server has no value, a path does not fit — and then the local value stays as it
 * is. Call inside a sync transaction (it reads the changelog).
 */
export async function rebase(
  ctx: SyncContext,
  table: string,
  key: IndexableType,
  id: string,
  base: { value?: unknown } | undefined,
  except?: ReadonlySet<number>,
): Promise<EntityChange | undefined> {
  if (base?.value === undefined) return
  const value = structuredClone(base.value) as Record<string, unknown>
  try {
    for (const row of await ctx.db.table<LogRow, number>(LOG_TABLE).bulkGet(ctx.pending.revsOf(id, except))) {
      for (const change of row!.changes) {
        if (keyId(change.table, change.key) !== id) continue
        const { changes, ops } = change
        // A whole value or a delete (not a field update) stops here: the local value stays. The
        // paths and operations apply as Dexie applied them here (the server's answer decides).
        if (!ops || '' in changes!) return
        for (const path in changes)
          Dexie.setByKeyPath(
            value,
            path,
            Object.hasOwn(ops, path)
              ? new PropModification(ops[path] as never).execute(Dexie.getByKeyPath(value, path))
              : changes[path],
          )
      }
    }
  } catch {
    // A commit no longer in the changelog, a write that is not a patch, a path through
    // something else than an object: the local value stays.
    return
  }
  return entityChange(table, key, id, value)
}
