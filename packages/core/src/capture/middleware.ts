import Dexie, { cmp } from 'dexie'
import type {
  DBCore,
  DBCoreDeleteRangeRequest,
  DBCoreMutateRequest,
  DBCoreMutateResponse,
  DBCoreTable,
  DBCoreTableSchema,
  DBCoreTransaction,
  Middleware,
} from 'dexie'
import { LOG_TABLE } from '../log/changelog.js'
import type { LogWriter } from '../log/log-writer.js'
import type { ChangeEvent } from '../types.js'
import { encodeKey } from '../util/encode-key.js'
import type { Stage, Staging } from './stage.js'
import { toChangeEvents, type WriteRecord } from './to-change-events.js'

/** What the capture middleware needs from the feed that owns it. */
export interface CaptureConfig {
  staging: Staging
  /** False once the feed is closed: the middleware then only passes requests down. */
  isActive(): boolean
  isCaptured(table: string): boolean
  keepPrevious(table: string): boolean
  /** Writes the changelog row of each transaction; absent when the changelog is off. */
  log: LogWriter | undefined
}

/** Name under which the middleware is registered with `db.use()`. */
export const CAPTURE_MIDDLEWARE_NAME = 'changecast'

/**
 * Level in Dexie's DBCore stack. Below Dexie's hooks middleware (level 2), so that
 * values changed by `creating`/`updating` hooks are seen as stored; above its
 * observability (0) and existing-values cache (-1) middlewares, whose cache lets us
 * read previous values for free after `update`, `modify` and `bulkUpdate`.
 */
export const CAPTURE_MIDDLEWARE_LEVEL = 1.5

type Response = PromiseLike<DBCoreMutateResponse>
type DexieThenable<T> = PromiseLike<T>

/**
 * The DBCore middleware: every write request on a captured table is turned into change
 * events, staged per native transaction and handed on when it commits.
 */
export function createCaptureMiddleware(config: CaptureConfig): Middleware<DBCore> {
  return {
    stack: 'dbcore',
    name: CAPTURE_MIDDLEWARE_NAME,
    level: CAPTURE_MIDDLEWARE_LEVEL,
    create(down) {
      return {
        ...down,
        transaction(stores, mode, options) {
          if (mode !== 'readwrite' || !config.isActive() || !stores.some((name) => config.isCaptured(name))) {
            return down.transaction(stores, mode, options)
          }
          const { log, staging } = config
          // The changelog store joins every capturing transaction, so its row commits with the data.
          const scope = log && !stores.includes(LOG_TABLE) ? [...stores, LOG_TABLE] : stores
          const trans = down.transaction(scope, mode, options)
          staging.watch(trans)
          log?.attach(trans as unknown as IDBTransaction, () => staging.get(trans))
          return trans
        },
        table(name) {
          const table = down.table(name)
          if (!config.isCaptured(name)) return table
          return captureTable(table, config)
        },
      }
    },
  }
}

function captureTable(table: DBCoreTable, config: CaptureConfig): DBCoreTable {
  const { schema } = table
  const { staging } = config
  const name = schema.name

  // A transaction's changelog row is written once it runs no request of ours; the
  // application's reads count, because what follows a read may be another write.
  const idle = (trans: DBCoreTransaction, stage: Stage): void => {
    if (stage.pending === 0 && stage.reads === 0) config.log?.settled(trans as unknown as IDBTransaction, stage)
  }

  // Reads wait behind a write that is still fetching its previous values, so that a
  // read requested after a write sees it, as it would without Changecast.
  const after = <T>(trans: DBCoreTransaction, read: () => Promise<T>): Promise<T> => {
    const stage = staging.get(trans)
    if (!stage) return read()
    const run = (): Promise<T> => {
      stage.reads++
      const result = read()
      const done = (): void => {
        stage.reads--
        idle(trans, stage)
      }
      result.then(done, done)
      return result
    }
    return stage.gate ? (stage.gate.then(run) as Promise<T>) : run()
  }

  return {
    ...table,
    get: (req) => after(req.trans, () => table.get(req)),
    getMany: (req) => after(req.trans, () => table.getMany(req)),
    query: (req) => after(req.trans, () => table.query(req)),
    openCursor: (req) => after(req.trans, () => table.openCursor(req)),
    count: (req) => after(req.trans, () => table.count(req)),
    mutate(req) {
      if (!config.isActive()) return table.mutate(req)
      const stage = staging.watch(req.trans)
      let response: Promise<DBCoreMutateResponse>
      let build: (res: DBCoreMutateResponse) => ChangeEvent[]
      try {
        ;[response, build] = capture(table, req, stage, config.keepPrevious(name))
      } catch (error) {
        return Dexie.Promise.reject(error instanceof Error ? error : new Error(String(error)))
      }
      const index = stage.parts.push(undefined) - 1
      stage.pending++
      const settle = (events: ChangeEvent[]): void => {
        stage.parts[index] = events
        stage.size += events.length
        stage.pending--
        idle(req.trans, stage)
      }
      // Registered before the caller gets the promise, so the events are known before
      // any continuation of the caller runs (Dexie may commit right after it).
      response.then(
        (res) => settle(build(res)),
        () => settle([]),
      )
      return response
    },
  }
}

type Built = [Promise<DBCoreMutateResponse>, (res: DBCoreMutateResponse) => ChangeEvent[]]

/**
 * Starts one write: snapshots what is written, reads what it replaces, passes the
 * request down in order. Returns the response, and how to turn it into events.
 */
function capture(table: DBCoreTable, req: DBCoreMutateRequest, stage: Stage, keepPrevious: boolean): Built {
  const { schema } = table
  const stamp = { tx: stage.tx, origin: stage.origin, source: stage.source, at: 0 }
  const record = (write: Omit<WriteRecord, 'table' | 'keepPrevious'>): ChangeEvent[] =>
    toChangeEvents({ ...write, table: schema.name, keepPrevious }, stamp)

  if (req.type === 'add') {
    // Copy now: the caller may change its objects once the call returns.
    const values = snapshot(req.values)
    const response = sequenced(stage, () => table.mutate(req))
    return [
      response,
      (res) =>
        record({
          op: 'add',
          keys: resultKeys(res, req),
          values: withKeys(schema, values, res),
          failures: res.failures,
        }),
    ]
  }

  if (req.type === 'put') {
    const values = snapshot(req.values)
    const keys = effectiveKeys(schema, req.keys, req.values)
    let previous: unknown[] = []
    const response = sequencedAfterRead(
      stage,
      () => readPrevious(table, req.trans, keys),
      (found) => {
        previous = found
        return table.mutate(req)
      },
    )
    return [
      response,
      (res) =>
        record({
          op: 'put',
          keys: resultKeys(res, req),
          values: withKeys(schema, values, res),
          previous,
          failures: res.failures,
        }),
    ]
  }

  if (req.type === 'delete') {
    const keys = req.keys
    let previous: unknown[] = []
    const response = sequencedAfterRead(
      stage,
      // Without previous capture a delete only needs to know which keys exist.
      () => readPrevious(table, req.trans, keys, keepPrevious),
      (found) => {
        previous = found
        return table.mutate(req)
      },
    )
    return [response, (res) => record({ op: 'delete', keys, previous, failures: res.failures })]
  }

  let removed: { keys: unknown[]; values: unknown[] } = { keys: [], values: [] }
  const response = sequencedAfterRead(
    stage,
    () => readRange(table, req, keepPrevious),
    (found) => {
      removed = found
      return table.mutate(req)
    },
  )
  return [
    response,
    (res) => (res.numFailures > 0 ? [] : record({ op: 'delete', keys: removed.keys, previous: removed.values })),
  ]
}

/** A write that needs no read: issued now, or after the writes still waiting before it. */
function sequenced(stage: Stage, issue: () => Promise<DBCoreMutateResponse>): Promise<DBCoreMutateResponse> {
  const gate = stage.gate
  return gate ? (gate.then(issue) as Promise<DBCoreMutateResponse>) : issue()
}

/**
 * A write that first reads what it replaces. Later requests of the same transaction
 * wait (through `stage.gate`) until this write has been issued, so IndexedDB still sees
 * the requests in the order the application made them.
 */
function sequencedAfterRead<T>(
  stage: Stage,
  read: () => DexieThenable<T>,
  write: (found: T) => Promise<DBCoreMutateResponse>,
): Promise<DBCoreMutateResponse> {
  const before = stage.gate
  let open!: () => void
  const issued = new Dexie.Promise<void>((resolve) => {
    open = resolve
  })
  stage.gate = issued
  void issued.then(() => {
    if (stage.gate === issued) stage.gate = undefined
  })
  const run = (): Response =>
    read().then(
      (found) => {
        try {
          return write(found)
        } finally {
          open()
        }
      },
      (error: unknown) => {
        open()
        throw error
      },
    )
  return (before ? before.then(run) : run()) as Promise<DBCoreMutateResponse>
}

/**
 * Values before the write. Dexie keeps the values that `update`, `modify` and
 * `bulkUpdate` just read in the transaction's `_cache`; asking for copies of those
 * costs no IndexedDB request. Otherwise read them, as fresh objects we own.
 */
function readPrevious(
  table: DBCoreTable,
  trans: DBCoreTransaction,
  keys: readonly unknown[],
  withValues = true,
): DexieThenable<unknown[]> {
  const present = keys.filter((key) => key !== undefined && key !== null)
  if (present.length === 0) return Dexie.Promise.resolve(keys.map(() => undefined))
  const cached = (trans as { _cache?: { keys: unknown[] } | null })._cache
  const request =
    cached && cached.keys.length >= present.length
      ? table.getMany({ trans, keys: present, cache: 'clone' })
      : present.length >= RANGE_READ_FROM && (!withValues || !table.schema.primaryKey.outbound)
        ? readByRange(table, trans, present, withValues)
        : table.getMany({ trans, keys: present })
  if (present.length === keys.length) return request as DexieThenable<unknown[]>
  return request.then((found: unknown[]) => {
    let next = 0
    return keys.map((key) => (key === undefined || key === null ? undefined : found[next++]))
  })
}

/** Stands for an existing row whose value was not read (previous capture is off). */
const PRESENT = true

/** From this many keys on, one read over [min, max] is tried before a get per key. */
const RANGE_READ_FROM = 32

/**
 * Old values of many keys with one cursor over [smallest key, largest key]: much
 * cheaper than one get per key when the keys are dense (a bulk write of consecutive ids,
 * or of new rows, where the range is empty). When the range holds more than twice as
 * many rows as keys, the keys are sparse: fall back to a get per key.
 */
function readByRange(
  table: DBCoreTable,
  trans: DBCoreTransaction,
  keys: unknown[],
  withValues: boolean,
): DexieThenable<unknown[]> {
  const { primaryKey } = table.schema
  let lower = keys[0]
  let upper = keys[0]
  for (const key of keys) {
    if (cmp(key, lower) < 0) lower = key
    else if (cmp(key, upper) > 0) upper = key
  }
  const limit = keys.length * 2
  const range = { type: 2 /* DBCoreRangeType.Range */, lower, upper, lowerOpen: false, upperOpen: false }
  return table
    .query({ trans, values: withValues, limit: limit + 1, query: { index: primaryKey, range } })
    .then(({ result }) => {
      if (result.length > limit) return table.getMany({ trans, keys })
      const found = new Map<string, unknown>()
      for (const item of result as unknown[]) {
        // A keys-only read yields the keys themselves: mark them present.
        if (withValues) found.set(encodeKey(primaryKey.extractKey!(item)), item)
        else found.set(encodeKey(item), PRESENT)
      }
      return keys.map((key) => found.get(encodeKey(key)))
    })
}

/** Keys and values in a range that is about to be deleted (`clear()`, `Collection.delete()`). */
function readRange(
  table: DBCoreTable,
  req: DBCoreDeleteRangeRequest,
  withValues: boolean,
): DexieThenable<{ keys: unknown[]; values: unknown[] }> {
  const { trans, range } = req
  const { primaryKey } = table.schema
  const query = { index: primaryKey, range }
  if (!withValues) {
    return table.query({ trans, query, values: false }).then(({ result: keys }) => ({
      keys: keys as unknown[],
      values: (keys as unknown[]).map(() => PRESENT),
    }))
  }
  if (!primaryKey.outbound) {
    return table.query({ trans, query, values: true }).then(({ result }) => ({
      keys: result.map((value: unknown): unknown => primaryKey.extractKey!(value)),
      values: result,
    }))
  }
  return table
    .query({ trans, query, values: false })
    .then(({ result: keys }) =>
      table.query({ trans, query, values: true }).then(({ result: values }) => ({ keys, values })),
    )
}

function effectiveKeys(
  schema: DBCoreTableSchema,
  keys: readonly unknown[] | undefined,
  values: readonly unknown[],
): unknown[] {
  if (keys) return [...keys]
  const extract = schema.primaryKey.extractKey
  return values.map((value): unknown => (extract ? extract(value) : undefined))
}

function resultKeys(
  res: DBCoreMutateResponse,
  req: { keys?: readonly unknown[] | null; values: readonly unknown[] },
): unknown[] {
  return res.results ?? (req.keys ? [...req.keys] : [])
}

/** Copies of the values being written, so later changes to the caller's objects do not leak into events. */
function snapshot(values: readonly unknown[]): unknown[] {
  // A value that cannot be cloned cannot be stored either: fail the whole request
  // before any item is written, with the browser's own DataCloneError.
  return values.map((value) => structuredClone(value))
}

/** Puts generated auto-increment keys into the copies of inbound-key values. */
function withKeys(schema: DBCoreTableSchema, values: unknown[], res: DBCoreMutateResponse): unknown[] {
  const { keyPath, autoIncrement, outbound } = schema.primaryKey
  if (!autoIncrement || outbound || typeof keyPath !== 'string' || !res.results) return values
  const results = res.results
  values.forEach((value, i) => {
    if (
      value !== null &&
      typeof value === 'object' &&
      Dexie.getByKeyPath(value, keyPath) === undefined &&
      results[i] !== undefined
    ) {
      Dexie.setByKeyPath(value, keyPath, results[i])
    }
  })
  return values
}
