import Dexie from 'dexie'
import { changecast, type ChangeBatch } from '@changecast/core'
import { LOG_TABLE, type LogRow } from '../../src/log/changelog.js'
import {
  Generator,
  printStep,
  SCHEMA,
  TABLES,
  type FuzzDb,
  type Row,
  type Step,
  type TransactionStep,
} from './program.js'

/**
 * The differential fuzz: one seeded program runs against plain Dexie and against Dexie +
 * Changecast, step by step. After every step:
 * - both databases hold the same rows;
 * - every call answered the same (values, or the name of the error it threw);
 * - replaying the events delivered so far reproduces every table of the captured database,
 *   and each event's previous value is the row as it was before;
 * - the changelog rows (what sync pushes to a server) say what the events say.
 */

export interface FuzzOptions {
  /** Steps per program. @default 40 */
  steps?: number
  /** Installs more on the captured database only, before it opens (the fuzz's own mutation check). */
  captureOnly?: (db: FuzzDb) => void
  /** Shrink a failing program to the fewest steps that still fail. @default true */
  shrink?: boolean
}

export interface Failure {
  seed: number
  /** Index of the step after which the databases differed. */
  step: number
  problem: string
  /** The program up to that step, shrunk, as the application would write it. */
  program: string
}

let counter = 0

/**
 * A step that ended in `PrematureCommitError` on one database and not on the other: Dexie's
 * own nested transactions under native async/await can let IndexedDB commit in a gap, so
 * plain Dexie alone ends such a step one way or the other by timing (seen in Chromium, about
 * one program in 300). What follows it says nothing about Changecast: the program stops there.
 */
export const RACED = 'raced'

/**
 * Runs one seed; returns what went wrong, shrunk to the fewest steps that still show it,
 * {@link RACED}, or `undefined` when both databases agreed all along.
 */
export async function runSeed(seed: number, options: FuzzOptions = {}): Promise<Failure | typeof RACED | undefined> {
  const steps = new Generator(seed).program(options.steps ?? 40)
  const failure = await runProgram(steps, options)
  if (!failure || failure === RACED) return failure
  if (options.shrink === false) {
    return {
      seed,
      ...failure,
      program: steps
        .slice(0, failure.step + 1)
        .map((step) => printStep(step))
        .join('\n'),
    }
  }
  const shrunk = await shrink(steps.slice(0, failure.step + 1), options)
  const rerun = await runProgram(shrunk, options)
  const final = rerun && rerun !== RACED ? rerun : failure
  return {
    seed,
    ...final,
    program: shrunk
      .slice(0, final.step + 1)
      .map((step) => printStep(step))
      .join('\n'),
  }
}

/** Drops one step at a time while the program still fails. */
async function shrink(steps: Step[], options: FuzzOptions): Promise<Step[]> {
  let current = steps
  for (let i = current.length - 2; i >= 0; i--) {
    const without = [...current.slice(0, i), ...current.slice(i + 1)]
    const failure = await runProgram(without, options)
    if (failure && failure !== RACED) current = without.slice(0, failure.step + 1)
  }
  return current
}

/** Hooks and two more middlewares, installed alike on both databases. */
function prepare(db: FuzzDb): void {
  db.users.hook('creating', (_key, row: Row) => {
    row.created = 1
  })
  db.users.hook('updating', (_changes, _key, row: Row) => ({ touched: ((row.touched as number | undefined) ?? 0) + 1 }))
  db.settings.hook('deleting', () => {})
  // Above Dexie's hooks: changes what items store.
  db.use({
    stack: 'dbcore',
    name: 'stamp',
    level: 5,
    create: (down) => ({
      ...down,
      table: (name) => {
        const table = down.table(name)
        if (name !== 'items') return table
        return {
          ...table,
          mutate: (req) =>
            table.mutate(
              req.type === 'add' || req.type === 'put'
                ? { ...req, values: req.values.map((value: Row) => ({ ...value, stamp: 1 })) }
                : req,
            ),
        }
      },
    }),
  })
  // Right below Changecast: passes everything on.
  db.use({
    stack: 'dbcore',
    name: 'pass',
    level: 1,
    create: (down) => ({
      ...down,
      table: (name) => {
        const table = down.table(name)
        return {
          ...table,
          get: (req) => table.get(req),
          getMany: (req) => table.getMany(req),
          query: (req) => table.query(req),
          openCursor: (req) => table.openCursor(req),
          count: (req) => table.count(req),
          mutate: (req) => table.mutate(req),
        }
      },
    }),
  })
}

function open(name: string): FuzzDb {
  const db = new Dexie(name, { addons: [] }) as FuzzDb
  db.version(1).stores(SCHEMA)
  prepare(db)
  return db
}

async function runProgram(
  steps: Step[],
  options: FuzzOptions,
): Promise<Omit<Failure, 'seed' | 'program'> | typeof RACED | undefined> {
  const id = `${Date.now()}-${++counter}`
  const plain = open(`fuzz-plain-${id}`)
  const captured = open(`fuzz-captured-${id}`)
  options.captureOnly?.(captured)
  const feed = changecast(captured, { channel: false })
  const batches: ChangeBatch[] = []
  feed.onBatch((batch) => batches.push(batch as unknown as ChangeBatch))
  const errors: unknown[] = []
  feed.onError((error) => errors.push(error))
  const replay = new Map<string, Map<string, unknown>>(TABLES.map((table) => [table, new Map()]))
  let delivered = 0
  let logged = 0
  try {
    await Promise.all([plain.open(), captured.open()])
    for (let index = 0; index < steps.length; index++) {
      const step = steps[index]!
      const expected = await run(plain, step)
      const actual = await run(captured, step)
      const fail = (problem: string) => ({ step: index, problem })
      if (prematureCommits(expected) !== prematureCommits(actual)) return RACED
      if (canon(actual) !== canon(expected)) {
        return fail(
          `the calls answered differently:\n  plain Dexie:  ${canon(expected)}\n  Changecast:   ${canon(actual)}`,
        )
      }
      const [want, got] = await Promise.all([dump(plain), dump(captured)])
      for (const table of TABLES) {
        if (canon(got[table]) !== canon(want[table])) {
          return fail(`${table} differs:\n  plain Dexie:  ${canon(want[table])}\n  Changecast:   ${canon(got[table])}`)
        }
      }
      if (errors.length > 0) return fail(`the feed reported ${String(errors[0])}`)
      for (const batch of batches.slice(delivered)) {
        for (const event of batch.events) {
          const rows = replay.get(event.table)!
          const key = canon(event.key)
          const before = rows.get(key)
          if (event.type === 'create' && before !== undefined)
            return fail(`create of ${event.table} ${key}, which existed`)
          if (event.type !== 'create' && canon(event.previous) !== canon(before)) {
            return fail(
              `${event.type} of ${event.table} ${key}: previous ${canon(event.previous)}, was ${canon(before)}`,
            )
          }
          if (event.type === 'delete') rows.delete(key)
          else rows.set(key, event.value)
        }
      }
      const fresh = batches.slice(delivered)
      delivered = batches.length
      for (const table of TABLES) {
        const rows = replay.get(table)!
        const replayed = [...rows.keys()].sort().map((key) => [key, canon(rows.get(key))])
        const stored = got[table]!.map(([key, value]) => [canon(key), canon(value)]).sort((a, b) =>
          a[0]! < b[0]! ? -1 : 1,
        )
        if (canon(replayed) !== canon(stored)) {
          return fail(
            `replaying the events does not give ${table}:\n  replayed: ${canon(replayed)}\n  stored:   ${canon(stored)}`,
          )
        }
      }
      const rows = await captured.table<LogRow, number>(LOG_TABLE).where(':id').above(logged).toArray()
      const fromRows = rows.map((row) => [row.rev, row.changes.map((c) => [c.type, c.table, c.key, c.value])])
      const fromEvents = fresh.map((batch) => [batch.rev, batch.events.map((e) => [e.type, e.table, e.key, e.value])])
      if (canon(fromRows) !== canon(fromEvents)) {
        return fail(`the changelog rows say otherwise:\n  rows:   ${canon(fromRows)}\n  events: ${canon(fromEvents)}`)
      }
      logged = rows.at(-1)?.rev ?? logged
    }
    return undefined
  } finally {
    feed.close()
    plain.close()
    captured.close()
    await Promise.all([Dexie.delete(plain.name), Dexie.delete(captured.name)])
  }
}

/** Makes one step on `db`; returns what each call answered, in program order. */
async function run(db: FuzzDb, step: Step): Promise<unknown[]> {
  const out: unknown[] = []
  if (step.kind === 'call') {
    out.push(await step.call.run(db).catch(errorOf))
    return out
  }
  const slot = out.push(undefined) - 1
  out[slot] = await transaction(db, step, out).then(() => 'committed', errorOf)
  return out
}

function transaction(db: FuzzDb, step: TransactionStep, out: unknown[]): Promise<void> {
  return db.transaction(
    step.mode,
    step.tables.map((table) => db[table]),
    async () => {
      const pending: Array<Promise<void>> = []
      for (const item of step.body) {
        const slot = out.push(undefined) - 1
        if ('nested' in item) {
          // Calls still running when a nested transaction starts race with the native
          // transaction's commit (with plain Dexie too, in Chromium): wait for them first.
          await Promise.all(pending.splice(0))
          out[slot] = await transaction(db, item.nested, out).then(() => 'committed', errorOf)
          continue
        }
        const made = item.call.run(db).then(
          (value) => void (out[slot] = value),
          (error: unknown) => void (out[slot] = errorOf(error)),
        )
        if (item.awaited) await made
        else pending.push(made)
      }
      await Promise.all(pending)
      if (step.end === 'throw') throw new Error('rollback')
      if (step.end === 'abort') Dexie.currentTransaction.abort()
    },
  )
}

const prematureCommits = (answers: unknown[]) =>
  answers.filter((answer) => (answer as { error?: string } | undefined)?.error === 'PrematureCommitError').length

/** An error as compared between the two databases: its name, and which items of a bulk call failed. */
function errorOf(error: unknown): unknown {
  const e = error as {
    name?: string
    failuresByPos?: Record<string, { name?: string }>
    failures?: Array<{ name?: string }>
  }
  const result: Record<string, unknown> = { error: e.name }
  if (e.failuresByPos) result.failed = Object.entries(e.failuresByPos).map(([at, f]) => `${at}:${f.name}`)
  else if (Array.isArray(e.failures)) result.failed = e.failures.map((f) => f.name)
  return result
}

/** Every table's rows, as `[key, value]` pairs in key order. */
async function dump(db: FuzzDb): Promise<Record<string, Array<[unknown, unknown]>>> {
  return db.transaction(
    'r',
    TABLES.map((table) => db[table]),
    async () => {
      const all: Record<string, Array<[unknown, unknown]>> = {}
      for (const table of TABLES) {
        const keys = await db[table].toCollection().primaryKeys()
        const values = await db[table].toArray()
        all[table] = keys.map((key, i) => [key, values[i]])
      }
      return all
    },
  )
}

/** A canonical text for comparing values: object keys sorted, `undefined` kept. */
export function canon(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (item === undefined) return '<undefined>'
    if (typeof item === 'number' && !Number.isFinite(item)) return `<${item}>`
    if (item instanceof Date) return `<date ${item.toISOString()}>`
    if (typeof item === 'object' && item !== null && !Array.isArray(item)) {
      return Object.fromEntries(
        Object.keys(item)
          .sort()
          .map((k) => [k, (item as Record<string, unknown>)[k]]),
      )
    }
    return item
  })
}
