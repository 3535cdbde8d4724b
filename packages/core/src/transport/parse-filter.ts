import { cmp } from '../util/dexie.js'
import { InvalidFilterError } from '../errors.js'
import type { ChangeEvent, ChangeSource, ChangeType } from '../types.js'
import { keyToString } from '../util/encode-key.js'

/** A validated subscription: the tables it listens to (`undefined`: all) and a matcher for the rest. */
export interface Matcher {
  tables: readonly string[] | undefined
  /** Checks key, type and source; `undefined` when the filter has none of them. */
  test: ((event: ChangeEvent) => boolean) | undefined
}

/** Which tables exist and which are captured, for validating filters. */
export interface TableCatalog {
  /** Every table name the database declares (empty when not known yet). */
  declared(): readonly string[]
  isCaptured(table: string): boolean
}

const TYPES: readonly ChangeType[] = ['create', 'update', 'delete']
const SOURCES: readonly ChangeSource[] = ['local', 'tab', 'remote']
const FIELDS = ['table', 'key', 'type', 'source']

/**
 * Validates a topic (`'*'`, `'todos'`, `'todos:42'`) or a filter object and turns it
 * into a {@link Matcher}. Throws {@link InvalidFilterError} naming the problem.
 */
export function parseFilter(filter: unknown, catalog: TableCatalog): Matcher {
  if (typeof filter === 'string') return parseTopic(filter, catalog)
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) {
    throw new InvalidFilterError(
      `Expected a topic ('*', 'todos', 'todos:42') or a filter object ({ table, key, type, source }), got ${show(filter)}.`,
    )
  }
  const spec = filter as Record<string, unknown>
  for (const field of Object.keys(spec)) {
    if (!FIELDS.includes(field)) {
      throw new InvalidFilterError(`Unknown filter field '${field}'. Known fields: ${FIELDS.join(', ')}.`)
    }
  }
  const tables = spec.table === undefined ? undefined : list<string>(spec.table, 'table')
  tables?.forEach((table) => checkTable(table, catalog))
  const types = spec.type === undefined ? undefined : oneOf(spec.type, TYPES, 'type')
  const sources = spec.source === undefined ? undefined : oneOf(spec.source, SOURCES, 'source')
  const hasKey = 'key' in spec && spec.key !== undefined
  const key = spec.key
  if (hasKey) checkKey(key)
  if (!types && !sources && !hasKey) return { tables, test: undefined }
  return {
    tables,
    test: (event) =>
      (!types || types.includes(event.type)) &&
      (!sources || sources.includes(event.source)) &&
      (!hasKey || cmp(event.key, key) === 0),
  }
}

function parseTopic(topic: string, catalog: TableCatalog): Matcher {
  if (topic === '*') return { tables: undefined, test: undefined }
  const colon = topic.indexOf(':')
  const table = colon === -1 ? topic : topic.slice(0, colon)
  if (table === '') throw new InvalidFilterError(`Topic '${topic}' has no table name before ':'.`)
  checkTable(table, catalog)
  if (colon === -1) return { tables: [table], test: undefined }
  const key = topic.slice(colon + 1)
  if (key === '')
    throw new InvalidFilterError(`Topic '${topic}' has no key after ':'; use '${table}' for the whole table.`)
  return { tables: [table], test: (event) => keyToString(event.key) === key }
}

function checkTable(table: unknown, catalog: TableCatalog): void {
  if (typeof table !== 'string' || table === '') {
    throw new InvalidFilterError(`Table names are non-empty strings, got ${show(table)}.`)
  }
  const declared = catalog.declared()
  if (declared.length > 0 && !declared.includes(table)) {
    const captured = declared.filter((name) => catalog.isCaptured(name))
    throw new InvalidFilterError(
      `Unknown table '${table}'. Tables you can subscribe to: ${captured.length ? captured.join(', ') : 'none'}.`,
    )
  }
  if (!catalog.isCaptured(table)) {
    throw new InvalidFilterError(
      `Table '${table}' is not captured (see the 'tables' option; '$'-prefixed and Changecast's tables never are).`,
    )
  }
}

function checkKey(key: unknown): void {
  if (!isValidKey(key)) {
    throw new InvalidFilterError(
      `Filter key ${show(key)} is not a valid IndexedDB key (a number, string, Date, binary, or an array of those).`,
    )
  }
}

/** True for the values IndexedDB accepts as keys. */
export function isValidKey(key: unknown): boolean {
  switch (typeof key) {
    case 'number':
      return !Number.isNaN(key)
    case 'string':
      return true
    case 'object':
      if (key instanceof Date) return !Number.isNaN(key.getTime())
      if (Array.isArray(key)) return key.every(isValidKey)
      return key instanceof ArrayBuffer || ArrayBuffer.isView(key)
    default:
      return false
  }
}

function list<T>(value: unknown, field: string): T[] {
  const items = Array.isArray(value) ? value : [value]
  if (items.length === 0)
    throw new InvalidFilterError(`Filter field '${field}' is an empty list; omit it to match everything.`)
  return items as T[]
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string): T[] {
  const items = list<unknown>(value, field)
  for (const item of items) {
    if (!allowed.includes(item as T)) {
      throw new InvalidFilterError(
        `Unknown ${field} ${show(item)}. Use one of: ${allowed.map((a) => `'${a}'`).join(', ')}.`,
      )
    }
  }
  return items as T[]
}

function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`
  if (typeof value === 'function') return 'a function'
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}
