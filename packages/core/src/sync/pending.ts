import type { Dexie } from 'dexie'
import { LOG_TABLE, type LogRow } from '../log/changelog.js'
import { keyId } from './store.js'

/** The entities a changelog row writes (none for a damaged row, or a damaged change). */
export const idsOf = (row: Pick<LogRow, 'changes'>): string[] =>
  Array.isArray(row.changes)
    ? [...new Set(row.changes.filter(isChange).map((change) => keyId(change.table, change.key)))]
    : []

/** A logged change that names its table (a damaged row may hold anything). */
export const isChange = (change: unknown): change is LogRow['changes'][number] =>
  typeof change === 'object' && change !== null && typeof (change as { table?: unknown }).table === 'string'

/**
 * The entities that have a local write the server has not answered yet (the outbox, and
 * set-aside local commits): remote changes to them are held back, not applied over them.
 * Kept in memory by the leader; `refresh()` reads the commits made since the last call
 * (in any tab), inside the transaction that is about to rely on it.
 */
export class PendingKeys {
  readonly #revs = new Map<number, string[]>()
  readonly #counts = new Map<string, number>()
  /** Revs of changelog rows this leader wrote for server changes: never read back. */
  readonly #remote = new Set<number>()

  #scanned: number

  constructor(scanned: number) {
    this.#scanned = scanned
  }

  /**
   * Adds the local commits made since the last call. Call inside a transaction that includes
   * the changelog. Rows this leader wrote itself for server changes are known not to be
   * local and are not read (a server batch's row holds all of its values).
   */
  async refresh(db: Dexie): Promise<void> {
    const log = db.table<LogRow, number>(LOG_TABLE)
    const revs = await log.where(':id').above(this.#scanned).primaryKeys()
    const unknown = revs.filter((rev) => !this.#remote.has(rev))
    const rows = unknown.length > 0 ? await log.bulkGet(unknown) : []
    for (const row of rows) if (row?.source === 'local') this.add(row.rev, idsOf(row))
    this.#scanned = revs.at(-1) ?? this.#scanned
  }

  /** The changelog row `rev` holds server changes this leader applied (see {@link refresh}). */
  remote(rev: number | undefined): void {
    if (rev === undefined) return
    this.#remote.add(rev)
    // The oldest are forgotten (a row not known here is read, which is only slower).
    if (this.#remote.size > 1000) for (const old of [...this.#remote].slice(0, 500)) this.#remote.delete(old)
  }

  /** True when changelog row `rev` is known to hold server changes (not a local commit). */
  isRemote(rev: number): boolean {
    return this.#remote.has(rev)
  }

  add(rev: number, ids: string[]): void {
    if (this.#revs.has(rev)) return
    this.#revs.set(rev, ids)
    for (const id of ids) this.#counts.set(id, (this.#counts.get(id) ?? 0) + 1)
  }

  /** The commit was answered (or dropped). */
  remove(rev: number): void {
    const ids = this.#revs.get(rev)
    if (!ids) return
    this.#revs.delete(rev)
    for (const id of ids) {
      const count = this.#counts.get(id)! - 1
      if (count === 0) this.#counts.delete(id)
      else this.#counts.set(id, count)
    }
  }

  /** The unanswered commits that write the entity, oldest first, except those in `except`. */
  revsOf(id: string, except?: ReadonlySet<number>): number[] {
    return [...this.#revs]
      .filter(([rev, ids]) => ids.includes(id) && !except?.has(rev))
      .map(([rev]) => rev)
      .sort((a, b) => a - b)
  }

  /** True when a commit other than those in `except` writes the entity and waits for an answer. */
  has(id: string, except?: ReadonlySet<number>): boolean {
    return this.#counts.has(id) && (!except || this.revsOf(id, except).length > 0)
  }
}
