import type Dexie from 'dexie'
import { add, remove, replacePrefix, type Collection, type Table } from 'dexie'
import { Random } from './random.js'

/**
 * Random programs of Dexie calls, the same from the same seed: every write API and every
 * read API, on tables that share keys, alone or in explicit (and nested) transactions, some
 * calls awaited and some not, some transactions aborted. Each call is data first (printed
 * as the application would write it) and made on a database by `run`.
 */

export const SCHEMA = {
  users: 'id, name, *tags',
  settings: 'id, theme',
  items: '++id, group',
  pairs: '[a+b], a',
  notes: '',
} as const

export type TableName = keyof typeof SCHEMA
export const TABLES = Object.keys(SCHEMA) as TableName[]
export type Row = Record<string, unknown>
export type FuzzDb = Dexie & Record<TableName, Table<Row, unknown>>

/** One call of the program. */
export interface Call {
  text: string
  /** True when the call writes (a readonly transaction holds none). */
  writes: boolean
  run(db: FuzzDb): Promise<unknown>
}

export interface TransactionStep {
  kind: 'transaction'
  mode: 'rw' | 'r'
  tables: TableName[]
  body: Item[]
  /** How the body ends: normally, by throwing (a rollback), or with `Dexie.currentTransaction.abort()`. */
  end: 'commit' | 'throw' | 'abort'
}
export type Step = { kind: 'call'; call: Call } | TransactionStep
export type Item = { call: Call; awaited: boolean } | { nested: TransactionStep }

// ---- data ----------------------------------------------------------------------------------

/** Keys the small tables share, so that a key read in one table is written in another. */
const KEYS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 2.5, 7.5]
const NAMES = ['ann', 'bob', 'cy', 'abe']
const TAGS = ['a', 'b', 'c']

/** A descriptor of a value that is not plain data: a Dexie modification or a callback. */
type Special = { $mod: 'add' | 'remove' | 'replacePrefix'; args: unknown[] } | { $fn: string; args: unknown[] }

const isSpecial = (value: unknown): value is Special =>
  typeof value === 'object' && value !== null && ('$mod' in value || '$fn' in value)

/** Makes fresh arguments from their descriptors (each run gets its own objects). */
function build(value: unknown): unknown {
  if (isSpecial(value)) return '$mod' in value ? MODS[value.$mod]!(...value.args) : FUNCTIONS[value.$fn]!(...value.args)
  if (Array.isArray(value)) return value.map(build)
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, build(v)]))
  }
  return value
}

const MODS: Record<string, (...args: unknown[]) => unknown> = {
  add: (arg) => add(arg as number),
  remove: (arg) => remove(arg as number),
  replacePrefix: (a, b) => replacePrefix(a as string, b as string),
}

/** Callbacks for modify(), update(), filter() and each(), by name. */
const FUNCTIONS: Record<string, (...args: unknown[]) => unknown> = {
  set: (field, value) => (row: Row) => {
    row[field as string] = value
  },
  bump: () => (row: Row) => {
    row.n = ((row.n as number | undefined) ?? 0) + 1
  },
  skip: () => () => false,
  remove: () => (_row: Row, ctx: { value?: unknown }) => {
    delete ctx.value
  },
  rekey: (field, by) => (row: Row) => {
    row[field as string] = (row[field as string] as number) + (by as number)
  },
  even: () => (row: Row) => typeof row.n === 'number' && row.n % 2 === 0,
  tagged: () => (row: Row) => Array.isArray(row.tags) && row.tags.includes('a'),
}

/** Prints a call's arguments as the application would write them. */
function show(value: unknown): string {
  if (isSpecial(value)) return `${'$mod' in value ? value.$mod : value.$fn}(${value.args.map(show).join(', ')})`
  if (value === undefined) return 'undefined'
  if (Array.isArray(value)) return `[${value.map(show).join(', ')}]`
  if (typeof value === 'object' && value !== null) {
    return `{ ${Object.entries(value)
      .map(([k, v]) => `${/^\w+$/.test(k) ? k : JSON.stringify(k)}: ${show(v)}`)
      .join(', ')} }`
  }
  return JSON.stringify(value)
}

// ---- calls ---------------------------------------------------------------------------------

/** A call of `method` on `db[table]` (or on a collection made by `collection`), with `args` built fresh per run. */
function call(
  table: TableName,
  method: string,
  args: unknown[],
  options: {
    writes: boolean
    collection?: { text: string; make: (t: Table<Row, unknown>) => Collection<Row, unknown> }
  },
): Call {
  const on = options.collection ? `${options.collection.text}.` : ''
  return {
    text: `db.${table}.${on}${method}(${args.map(show).join(', ')})`,
    writes: options.writes,
    run(db) {
      const target = options.collection ? options.collection.make(db[table]) : db[table]
      const fn = (target as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[method]!
      return fn.apply(target, args.map(build))
    },
  }
}

export class Generator {
  readonly #random: Random
  /** Auto-increment ids the program may have made. */
  #itemIds = 20
  /** Keys a transaction favours: related rows of several tables under the same ids, as in apps. */
  #focus: number[] | undefined

  constructor(seed: number) {
    this.#random = new Random(seed)
  }

  program(steps: number): Step[] {
    return Array.from({ length: steps }, () => this.step())
  }

  step(): Step {
    const r = this.#random
    if (r.chance(0.4)) return { kind: 'call', call: this.call(r.pick(TABLES), r.chance(0.7)) }
    return this.transaction(r.chance(0.85) ? 'rw' : 'r', 0)
  }

  transaction(mode: 'rw' | 'r', depth: number, within: TableName[] = TABLES): TransactionStep {
    const r = this.#random
    const tables = r.some(within)
    const outer = this.#focus
    if (depth === 0) this.#focus = r.chance(0.7) ? [r.pick(KEYS), r.pick(KEYS)] : undefined
    const body: Item[] = []
    for (let i = r.int(1, 6); i > 0; i--) {
      if (depth < 2 && r.chance(0.1)) {
        body.push({ nested: this.transaction(mode === 'r' || r.chance(0.2) ? 'r' : 'rw', depth + 1, tables) })
      } else {
        body.push({ call: this.call(r.pick(tables), mode === 'rw' && r.chance(0.65)), awaited: r.chance(0.6) })
      }
    }
    const end = depth === 0 && r.chance(0.2) ? r.pick(['throw', 'abort'] as const) : 'commit'
    if (depth === 0) this.#focus = outer
    return { kind: 'transaction', mode, tables, body, end }
  }

  call(table: TableName, writes: boolean): Call {
    return writes ? this.write(table) : this.read(table)
  }

  // ---- keys and values ----

  key(table: TableName): unknown {
    const r = this.#random
    if (table === 'pairs') return [r.pick(['x', 'y']), r.int(0, 5)]
    if (this.#focus && r.chance(0.6)) return r.pick(this.#focus)
    if (table === 'items' && r.chance(0.3)) return r.int(1, this.#itemIds)
    return r.pick(KEYS)
  }

  /** A value of `table`, with its key (inbound tables) unless `keyless` (auto-increment). */
  value(table: TableName, key = this.key(table), keyless = false): Row {
    const r = this.#random
    switch (table) {
      case 'users': {
        const row: Row = { id: key, name: r.pick(NAMES), tags: r.some(TAGS, 0), n: r.int(0, 9) }
        if (r.chance(0.4)) row.nested = { a: r.int(0, 3), b: r.pick(['p', 'q']) }
        return row
      }
      case 'settings':
        return r.chance(0.5)
          ? { id: key, theme: r.pick(['dark', 'light']) }
          : { id: key, theme: 'dark', size: r.int(10, 16) }
      case 'items': {
        const row: Row = { group: r.pick(['g1', 'g2']), n: r.int(0, 9) }
        if (!keyless) row.id = key
        else this.#itemIds++
        return row
      }
      case 'pairs': {
        const [a, b] = key as [string, number]
        return { a, b, label: r.pick(['l1', 'l2', 'l3']) }
      }
      case 'notes':
        return { text: r.pick(['hello', 'world', 'note']), n: r.int(0, 9) }
    }
  }

  values(table: TableName, count: number): { values: Row[]; keys?: unknown[] } {
    const r = this.#random
    const keys = Array.from({ length: count }, () => this.key(table))
    if (table === 'notes') return { values: keys.map(() => this.value(table)), keys }
    const keyless = table === 'items' && r.chance(0.3)
    return { values: keys.map((key) => this.value(table, key, keyless)) }
  }

  /** Many consecutive numeric keys (the capture's range reads and range deletes). */
  dense(): number[] {
    const r = this.#random
    const from = r.pick([0, 3, 100])
    return Array.from({ length: r.pick([33, 64, 210, 260]) }, (_, i) => from + i)
  }

  spec(table: TableName): Record<string, unknown> {
    const r = this.#random
    const mod = (name: 'add' | 'remove' | 'replacePrefix', ...args: unknown[]): Special => ({ $mod: name, args })
    switch (table) {
      case 'users':
        return r.pick<Record<string, unknown>>([
          { name: r.pick(NAMES) },
          { n: mod('add', r.int(1, 3)) },
          { tags: mod('add', [r.pick(TAGS)]) },
          { tags: mod('remove', [r.pick(TAGS)]) },
          { 'nested.a': r.int(0, 5) },
          { name: mod('replacePrefix', 'a', 'A') },
          { n: undefined, name: 'zed' },
          { n: r.int(0, 9), tags: [] },
        ])
      case 'settings':
        return r.pick<Record<string, unknown>>([
          { theme: r.pick(['dark', 'light']) },
          { size: mod('add', 2) },
          { size: 12 },
        ])
      case 'items':
        return r.pick<Record<string, unknown>>([{ group: r.pick(['g1', 'g2']) }, { n: mod('add', -1) }])
      case 'pairs':
        return { label: r.pick(['l1', 'l2', 'l4']) }
      case 'notes':
        return r.pick<Record<string, unknown>>([{ text: 'edited' }, { n: mod('add', 5) }])
    }
  }

  /** A modify() callback, by name. */
  modifier(table: TableName): Special {
    const r = this.#random
    const options: Special[] = [
      { $fn: 'bump', args: [] },
      { $fn: 'skip', args: [] },
      { $fn: 'remove', args: [] },
      { $fn: 'set', args: [table === 'pairs' ? 'label' : 'n', 7] },
    ]
    if (table === 'users' || table === 'settings') options.push({ $fn: 'rekey', args: ['id', r.pick([20, 0.5])] })
    return r.pick(options)
  }

  /** A collection of `table` to read from or write through. */
  collection(table: TableName): { text: string; make: (t: Table<Row, unknown>) => Collection<Row, unknown> } {
    const r = this.#random
    const key = this.key(table)
    const other = this.key(table)
    const pk = table === 'pairs' ? '[a+b]' : table === 'notes' ? ':id' : r.pick(['id', ':id'])
    const choices: Array<{ text: string; make: (t: Table<Row, unknown>) => Collection<Row, unknown> }> = [
      { text: `where(${show(pk)}).equals(${show(key)})`, make: (t) => t.where(pk).equals(key as never) },
      {
        text: `where(${show(pk)}).anyOf(${show(key)}, ${show(other)})`,
        make: (t) => t.where(pk).anyOf(key as never, other as never),
      },
      { text: 'toCollection()', make: (t) => t.toCollection() },
      { text: `filter(even())`, make: (t) => t.filter(FUNCTIONS.even!() as (row: Row) => boolean) },
    ]
    if (table !== 'pairs') {
      const [low, high] = [Math.min(key as number, other as number), Math.max(key as number, other as number)]
      choices.push({
        text: `where(${show(pk)}).between(${low}, ${high}, true, true)`,
        make: (t) => t.where(pk).between(low, high, true, true),
      })
      choices.push({ text: `where(${show(pk)}).above(${low})`, make: (t) => t.where(pk).above(low) })
    }
    if (table === 'users') {
      const name = r.pick(NAMES)
      choices.push({ text: `where("name").equals(${show(name)})`, make: (t) => t.where('name').equals(name) })
      choices.push({ text: `where("tags").equals("a")`, make: (t) => t.where('tags').equals('a') })
    }
    if (table === 'settings')
      choices.push({ text: `where("theme").equals("dark")`, make: (t) => t.where('theme').equals('dark') })
    if (table === 'items')
      choices.push({ text: `where("group").equals("g1")`, make: (t) => t.where('group').equals('g1') })
    return r.pick(choices)
  }

  write(table: TableName): Call {
    const r = this.#random
    const w = { writes: true }
    const outbound = table === 'notes'
    switch (r.int(0, 14)) {
      case 0: {
        const key = this.key(table)
        return outbound
          ? call(table, 'add', [this.value(table), key], w)
          : call(table, 'add', [this.value(table, key, table === 'items' && r.chance(0.3))], w)
      }
      case 1:
      case 2: {
        const key = this.key(table)
        return outbound
          ? call(table, 'put', [this.value(table), key], w)
          : call(table, 'put', [this.value(table, key)], w)
      }
      case 3:
      case 4:
        return call(table, 'update', [this.key(table), r.chance(0.8) ? this.spec(table) : this.modifier(table)], w)
      case 5:
        return outbound
          ? call(table, 'update', [this.key(table), this.spec(table)], w)
          : call(table, 'upsert', [this.key(table), this.spec(table)], w)
      case 6: {
        const { values, keys } = this.values(table, r.int(1, 5))
        return call(table, r.pick(['bulkAdd', 'bulkPut']), keys ? [values, keys] : [values], w)
      }
      case 7:
        return call(
          table,
          'bulkUpdate',
          [Array.from({ length: r.int(1, 4) }, () => ({ key: this.key(table), changes: this.spec(table) }))],
          w,
        )
      case 8:
        return call(table, 'delete', [this.key(table)], w)
      case 9:
        return call(table, 'bulkDelete', [Array.from({ length: r.int(1, 5) }, () => this.key(table))], w)
      case 10:
        return r.chance(0.3)
          ? call(table, 'clear', [], w)
          : call(table, 'delete', [], { ...w, collection: this.collection(table) })
      case 11:
      case 12:
        return call(table, 'modify', [r.chance(0.5) ? this.spec(table) : this.modifier(table)], {
          ...w,
          collection: this.collection(table),
        })
      default: {
        // Many close keys: range reads, held requests, range deletes.
        if (table === 'pairs') return call(table, 'put', [this.value(table)], w)
        const keys = this.dense()
        if (r.chance(0.4)) return call(table, 'bulkDelete', [r.chance(0.8) ? keys : [...keys].reverse()], w)
        const values = keys.map((key) => (outbound ? this.value(table) : this.value(table, key)))
        return call(table, r.chance(0.8) ? 'bulkPut' : 'bulkAdd', outbound ? [values, keys] : [values], w)
      }
    }
  }

  read(table: TableName): Call {
    const r = this.#random
    const w = { writes: false }
    switch (r.int(0, 9)) {
      case 0:
        return table === 'users' && r.chance(0.3)
          ? call(table, 'get', [{ name: r.pick(NAMES) }], w)
          : call(table, 'get', [this.key(table)], w)
      case 1:
        return call(
          table,
          'bulkGet',
          [r.chance(0.7) ? Array.from({ length: r.int(1, 5) }, () => this.key(table)) : this.dense().slice(0, 40)],
          w,
        )
      case 2:
        return call(table, 'count', [], w)
      case 3:
        return call(table, 'toArray', [], { ...w, collection: this.collection(table) })
      case 4:
        return call(table, 'primaryKeys', [], { ...w, collection: this.collection(table) })
      case 5:
        return call(table, 'keys', [], { ...w, collection: this.collection(table) })
      case 6:
        return call(table, 'count', [], { ...w, collection: this.collection(table) })
      case 7: {
        // each() answers undefined: the rows it saw are the result.
        const collection = this.collection(table)
        return {
          text: `db.${table}.${collection.text}.each((row, cursor) => seen.push([cursor.primaryKey, row]))`,
          writes: false,
          async run(db) {
            const seen: unknown[] = []
            await collection.make(db[table]).each((row, cursor) => seen.push([cursor.primaryKey, row]))
            return seen
          },
        }
      }
      case 8:
        return call(table, r.pick(['first', 'last']), [], { ...w, collection: this.collection(table) })
      default: {
        const limit = r.int(1, 4)
        const offset = r.int(0, 2)
        const reverse = r.chance(0.5)
        return call(table, 'toArray', [], {
          ...w,
          collection: {
            text: `toCollection()${reverse ? '.reverse()' : ''}.offset(${offset}).limit(${limit})`,
            make: (t) => {
              const c = t.toCollection()
              return (reverse ? c.reverse() : c).offset(offset).limit(limit)
            },
          },
        })
      }
    }
  }
}

/** A step as the application would write it. */
export function printStep(step: Step, indent = ''): string {
  if (step.kind === 'call') return `${indent}await ${step.call.text}`
  const lines = [
    `${indent}await db.transaction('${step.mode}', [${step.tables.map((t) => `db.${t}`).join(', ')}], async () => {`,
  ]
  for (const item of step.body) {
    if ('nested' in item) lines.push(`${indent}  await Promise.all(running)`, printStep(item.nested, indent + '  '))
    else lines.push(`${indent}  ${item.awaited ? 'await ' : 'void '}${item.call.text}`)
  }
  if (step.end === 'throw') lines.push(`${indent}  throw new Error('rollback')`)
  if (step.end === 'abort') lines.push(`${indent}  Dexie.currentTransaction.abort()`)
  lines.push(`${indent}})`)
  return lines.join('\n')
}
