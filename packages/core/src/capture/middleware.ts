import { cmp, Dexie } from '../util/dexie.js'
import type { DBCore, DBCoreMutateRequest, DBCoreTable, DBCoreTransaction, Middleware } from 'dexie'
import { LOG_TABLE } from '../log/changelog.js'
import { captureWrite, type CapturedWrite } from './capture-write.js'
import { hasDexieCache, isExplicit } from './dexie-internals.js'
import { keepRead } from './kept-read.js'
import type { LogWriter } from './log-writer.js'
import type { Stage, Staging } from './stage.js'

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
 * observability (0) and existing-values cache (-1) middlewares, which see Changecast's
 * requests as they see the application's.
 */
export const CAPTURE_MIDDLEWARE_LEVEL = 1.5

/**
 * The DBCore middleware: every write request on a captured table is turned into change
 * events, staged per native transaction and handed on when it commits. Every read is
 * passed down as it was made (Changecast answers none of Dexie's reads itself); the
 * answers of the reads Dexie makes before it writes are kept in Changecast's own cache.
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
          // Dexie commits the transactions it opens around one operation itself: the row is
          // written then (the patched commit), unless something below says it cannot wait.
          staging.watch(trans).commits = true
          log?.attach(trans as unknown as IDBTransaction, () => staging.get(trans))
          return trans
        },
        table(name) {
          const table = down.table(name)
          return config.isCaptured(name) ? captureTable(table, config) : table
        },
      }
    },
  }
}

function captureTable(table: DBCoreTable, config: CaptureConfig): DBCoreTable {
  const { staging, log } = config
  const name = table.schema.name

  /**
   * No request of the transaction is running. Where nobody will call `commit()`, a probe
   * writes the row if no new request comes. In Dexie's own transactions a successful write
   * is followed by `commit()` or by another read; only after a read (the operation may now
   * fail, as a chunked `modify` whose callback throws) or a failed write may the
   * transaction end without `commit()`, leaving the writes so far to auto-commit.
   */
  const idle = (trans: DBCoreTransaction, stage: Stage, afterRead: boolean): void => {
    if (stage.pending > 0 || stage.reads > 0 || !log) return
    if (stage.commits && !afterRead && !stage.failed && !isExplicit(trans)) return
    log.idle(trans as unknown as IDBTransaction, stage)
  }

  // The application's reads are counted: what follows a read may be another write, so the
  // row waits for them.
  const tracked =
    <R extends { trans: DBCoreTransaction }, T>(read: (req: R, stage: Stage) => Promise<T>) =>
    (req: R): Promise<T> => {
      const stage = staging.get(req.trans)
      if (!stage) return read(req, stage!)
      stage.read = true
      stage.reads++
      const result = read(req, stage)
      const done = (): void => {
        stage.reads--
        idle(req.trans, stage, true)
      }
      result.then(done, done)
      return result
    }

  const mutate = (req: DBCoreMutateRequest, stage: Stage): Promise<Awaited<ReturnType<DBCoreTable['mutate']>>> => {
    // The first write of a transaction Dexie opened around one operation (put, delete,
    // `update()`…), and whether it is the only request made in it so far.
    const first = stage.commits && stage.parts.length === 0 && !isExplicit(req.trans)
    const alone = first && !stage.read
    // The row can be written as soon as the first write's read answers, while that write is
    // still running. After reads, only for a write of one item (an `update()`): a `modify()`
    // that reads and writes in chunks would have to rewrite the row for every further chunk.
    const early =
      log && first && (alone || itemCount(req) === 1)
        ? (assumed: () => ChangeEventList | undefined) =>
            log.early(req.trans as unknown as IDBTransaction, stage, assumed)
        : undefined
    // Counted before the write starts: an early changelog row may be written right away.
    const index = stage.parts.push(undefined) - 1
    stage.pending++
    let write: CapturedWrite
    try {
      write = captureWrite(table, req, stage, config.keepPrevious(name), early, alone)
    } catch (error) {
      stage.parts.pop()
      stage.pending--
      return Dexie.Promise.reject(error instanceof Error ? error : new Error(String(error)))
    }
    const settle = (events: ChangeEventList, failed: boolean): void => {
      stage.parts[index] = events
      stage.size += events.length
      stage.pending--
      if (failed) stage.failed = true
      // The row written early says something else (a key existed after all, a write failed).
      if (stage.log.assumed && index === 0 && !sameEvents(stage.log.assumed, events)) stage.log.written = -1
      idle(req.trans, stage, false)
    }
    // Registered before the caller gets the promise, so the events are known before
    // any continuation of the caller runs (Dexie may commit right after it).
    write.response.then(
      (res) => settle(write.events(res), res.numFailures > 0),
      () => settle([], true),
    )
    return write.response
  }

  return {
    ...table,
    get: tracked((req) => table.get(req)),
    getMany: tracked((req, stage) => {
      // Dexie reads the values its update(), modify(), bulkUpdate() and hooks are about to
      // replace with `cache` set: the write that follows takes them from Changecast's cache.
      // Only answers read from IndexedDB are kept: Dexie answers from its own cache while it
      // has one, which can hold another table's rows under the same keys.
      const keep = req.cache && stage && !hasDexieCache(req.trans)
      const result = table.getMany(req)
      if (keep) result.then(keepRead(stage, name, req.keys), () => {})
      return result
    }),
    query: tracked((req) => table.query(req)),
    openCursor: tracked((req) => table.openCursor(req)),
    count: tracked((req) => table.count(req)),
    mutate: (req) => (config.isActive() ? mutate(req, staging.watch(req.trans)) : table.mutate(req)),
  }
}

type ChangeEventList = ReturnType<CapturedWrite['events']>

/** Items written or deleted by one request (a range delete counts as many). */
function itemCount(req: DBCoreMutateRequest): number {
  return req.type === 'deleteRange' ? Infinity : req.type === 'delete' ? req.keys.length : req.values.length
}

/** Same types and keys, in the same order. */
function sameEvents(a: ChangeEventList, b: ChangeEventList): boolean {
  return a.length === b.length && a.every((event, i) => event.type === b[i]!.type && cmp(event.key, b[i]!.key) === 0)
}
