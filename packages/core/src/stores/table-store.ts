import { cmp, Dexie } from '../util/dexie.js'
import type { Feed } from '../changecast.js'
import type { AnyTables, ChangeEvent, TableName, ValueOf } from '../types.js'
import { InvalidOptionsError } from '../errors.js'
import { encodeKey } from '../util/encode-key.js'
import { lazyStore, type ExternalStore } from './external-store.js'

type Leaf = string | number | boolean | bigint | symbol | null | undefined | Date | ArrayBuffer | ArrayBufferView

/**
 * The key paths of `T` a list can sort by: its fields and dotted paths into nested plain
 * objects (three levels deep); any string when `T` is not known (`unknown`, `any`).
 */
export type KeyPath<T, Depth extends unknown[] = []> = unknown extends T
  ? string
  : Depth['length'] extends 3
    ? never
    : T extends Leaf | readonly unknown[]
      ? never
      : {
          [K in keyof T & string]:
            | K
            | (NonNullable<T[K]> extends Leaf | readonly unknown[]
                ? never
                : `${K}.${KeyPath<NonNullable<T[K]>, [...Depth, unknown]>}`)
        }[keyof T & string]

/** Which rows of a table a live list holds, and in which order. */
export interface TableQuery<T = unknown> {
  /** Rows to keep: field values that must be equal, or a predicate. @default every row */
  where?: Partial<T> | ((value: T) => boolean)
  /**
   * Key path to sort by (ties by primary key): a field of the value, or a dotted path into a
   * nested object (`'author.name'`). Typed from the value, so a typo does not compile; at
   * run time a path that no loaded row has, and that is not an index, is reported once
   * with `console.warn` (rows then sort by primary key). @default the primary key
   */
  orderBy?: KeyPath<T>
  /** Sort descending. @default false */
  reverse?: boolean
  /** Return at most this many rows (after sorting). @default no limit */
  limit?: number
}

/**
 * A live array of a table's rows: read once from Dexie when the first subscriber comes,
 * then kept current from change events, without re-querying. A change to a row that is
 * not (and was not) in the list produces no new snapshot; unchanged rows keep their
 * object identity, so memoised row components do not re-render.
 *
 * The store keeps every matching row in memory; `limit` applies to the array it returns.
 */
export function tableStore<Tables, N extends TableName<Tables>>(
  typedFeed: Feed<Tables>,
  table: N,
  query: TableQuery<ValueOf<Tables, N>> = {},
): ExternalStore<readonly ValueOf<Tables, N>[]> {
  type T = ValueOf<Tables, N>
  // One feed type inside: the table map only shapes the signature.
  const feed = typedFeed as unknown as Feed<AnyTables>
  const orderBy = checkOrderBy(query.orderBy)
  const matches = predicate(query.where)
  const order = comparator<T>(orderBy, query.reverse === true)
  let warned = false
  const rows = new Map<string, { key: unknown; value: T }>()
  let snapshot: readonly T[] = []

  const rebuild = (): boolean => {
    const next = [...rows.values()].sort(order).map((row) => row.value)
    const limited = query.limit !== undefined && next.length > query.limit ? next.slice(0, query.limit) : next
    if (limited.length === snapshot.length && limited.every((value, i) => value === snapshot[i])) return false
    snapshot = limited
    return true
  }

  return lazyStore(
    () => snapshot,
    (notify) => {
      let active = true
      const apply = (events: ChangeEvent[]): boolean => {
        let touched = false
        for (const event of events) {
          if (event.table !== table) continue
          const id = encodeKey(event.key)
          if (event.type !== 'delete' && matches(event.value as T)) {
            rows.set(id, { key: event.key, value: event.value as T })
            touched = true
          } else if (rows.delete(id)) touched = true
        }
        return touched
      }
      // Events committed while the rows are read are held, then applied on top of them.
      const load = (): void => {
        const pending: ChangeEvent[] = []
        const buffer = feed.onBatch((batch) => pending.push(...batch.events))
        readRows<T>(feed.db, table).then(
          (loaded) => {
            buffer()
            if (!active) return
            rows.clear()
            for (const row of loaded) if (matches(row.value)) rows.set(encodeKey(row.key), row)
            if (orderBy && !warned && isUnknownPath(feed.db, table, orderBy, loaded)) {
              warned = true
              console.warn(
                `[changecast] orderBy '${orderBy}': no ${table} row has this field and it is not an index; rows are sorted by primary key. A typo?`,
              )
            }
            apply(pending)
            rebuild()
            notify()
          },
          (error: unknown) => {
            buffer()
            console.error(`[changecast] Could not read table ${table}:`, error)
          },
        )
      }
      const off = feed.onBatch((batch) => {
        if (apply(batch.events) && rebuild()) notify()
      })
      const offResync = feed.onResync(load)
      load()
      return () => {
        active = false
        off()
        offResync()
      }
    },
  )
}

async function readRows<T>(db: Dexie, name: string): Promise<Array<{ key: unknown; value: T }>> {
  const table = db.table<T, unknown>(name)
  const keyPath = table.schema.primKey.keyPath
  if (keyPath) {
    const values = await table.toArray()
    return values.map((value) => ({ key: Dexie.getByKeyPath(value as object, keyPath) as unknown, value }))
  }
  return db.transaction('r', table, async () => {
    const keys = await table.toCollection().primaryKeys()
    const values = await table.toArray()
    return values.map((value, i) => ({ key: keys[i], value }))
  })
}

function checkOrderBy(orderBy: unknown): string | undefined {
  if (orderBy === undefined) return undefined
  if (typeof orderBy !== 'string' || orderBy === '') {
    throw new InvalidOptionsError(
      `orderBy must be a field name or a dotted key path ('title', 'author.name'), got ${JSON.stringify(orderBy) ?? typeof orderBy}.`,
    )
  }
  return orderBy
}

/** True when rows were read, none has a value at `path`, and `path` is neither the primary key nor an index. */
function isUnknownPath(db: Dexie, name: string, path: string, loaded: ReadonlyArray<{ value: unknown }>): boolean {
  const { primKey, indexes } = db.table(name).schema
  if (primKey.keyPath === path || indexes.some((index) => index.keyPath === path || index.name === path)) return false
  return loaded.length > 0 && loaded.every((row) => Dexie.getByKeyPath(row.value as object, path) === undefined)
}

function predicate<T>(where: TableQuery<T>['where']): (value: T) => boolean {
  if (where === undefined) return () => true
  if (typeof where === 'function') return where
  const entries = Object.entries(where as Record<string, unknown>)
  return (value) => entries.every(([path, expected]) => Dexie.getByKeyPath(value as object, path) === expected)
}

function comparator<T>(orderBy: string | undefined, reverse: boolean) {
  const sign = reverse ? -1 : 1
  return (a: { key: unknown; value: T }, b: { key: unknown; value: T }): number => {
    if (orderBy) {
      const x = Dexie.getByKeyPath(a.value as object, orderBy) as unknown
      const y = Dexie.getByKeyPath(b.value as object, orderBy) as unknown
      const byField = compareValues(x, y)
      if (byField !== 0) return sign * byField
    }
    return sign * compareValues(a.key, b.key)
  }
}

function compareValues(a: unknown, b: unknown): number {
  if (a === b) return 0
  if (a === undefined || a === null) return -1
  if (b === undefined || b === null) return 1
  try {
    const result = cmp(a, b)
    if (!Number.isNaN(result)) return result
  } catch {
    // not keys (booleans, objects): compare their JSON below
  }
  const x = JSON.stringify(a) ?? ''
  const y = JSON.stringify(b) ?? ''
  return x < y ? -1 : x > y ? 1 : 0
}
