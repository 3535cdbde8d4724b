import type Dexie from 'dexie'
import { createCaptureMiddleware, CAPTURE_MIDDLEWARE_NAME } from './capture/middleware.js'
import { Staging } from './capture/stage.js'
import { ChangecastError, ChangecastStateError, InvalidFilterError, InvalidOptionsError } from './errors.js'
import { Bus } from './transport/bus.js'
import { parseFilter, type TableCatalog } from './transport/parse-filter.js'
import type {
  AnyTables,
  BatchOf,
  ChangeBatch,
  ChangecastOptions,
  ChangeEvent,
  ChangeFilter,
  EventOf,
  TableMap,
  TableName,
  Unsubscribe,
} from './types.js'
import { randomId } from './util/random-id.js'

/**
 * The change feed of one Dexie database, returned by {@link changecast}.
 * `Tables` is inferred from the database's typed tables.
 */
export interface Feed<Tables = AnyTables> {
  /** Id of this context (tab, worker): the `origin` of the events it makes. */
  readonly origin: string
  /** True once {@link Feed.close} was called. */
  readonly closed: boolean

  /**
   * Subscribes to change events, delivered after their transaction commits, in commit
   * order. Returns an unsubscribe function.
   *
   * @param topic `'*'` for everything, `'todos'` for one table, `'todos:42'` for one key
   *   (matched against the key's string form), or a {@link ChangeFilter}.
   * @throws {InvalidFilterError} for an unknown table, event type or filter field, or a
   *   handler that is not a function.
   * @example
   * const off = feed.on('todos', (e) => console.log(e.type, e.key, e.value))
   * feed.on({ table: 'todos', key: 42, type: ['update', 'delete'] }, refresh)
   * off()
   */
  on(topic: '*', handler: (event: EventOf<Tables>) => void): Unsubscribe
  on<N extends TableName<Tables>>(
    topic: N | `${N}:${string}`,
    handler: (event: EventOf<Tables, N>) => void,
  ): Unsubscribe
  on<N extends TableName<Tables> = TableName<Tables>>(
    filter: ChangeFilter<Tables, N>,
    handler: (event: EventOf<Tables, N>) => void,
  ): Unsubscribe

  /**
   * Subscribes to whole transactions: one {@link ChangeBatch} per commit, with its events
   * in write order, delivered after the individual events.
   * @example
   * feed.onBatch((batch) => console.log(batch.tx, batch.events.length))
   */
  onBatch(handler: (batch: BatchOf<Tables>) => void): Unsubscribe

  /**
   * Receives problems that cannot be thrown to a caller: a subscriber that threw, and
   * (with later transports) undeliverable messages. Without any error handler they go
   * to `console.error`.
   */
  onError(handler: (error: ChangecastError) => void): Unsubscribe

  /**
   * Removes every subscription and stops capturing. The database keeps working; writes
   * after `close()` produce no events. Calling it twice is harmless.
   */
  close(): void
}

const feeds = new WeakMap<Dexie, { readonly closed: boolean }>()
const OPTION_KEYS = ['tables', 'previous']

/**
 * Turns every committed write to `db` into change events. Call it once per database,
 * before the database opens (before `db.open()` or the first query).
 *
 * @example
 * import Dexie, { type EntityTable } from 'dexie'
 * import { changecast } from '@changecast/core'
 *
 * const db = new Dexie('app') as Dexie & { todos: EntityTable<Todo, 'id'> }
 * db.version(1).stores({ todos: 'id, done' })
 * const feed = changecast(db)
 * feed.on('todos', (e) => console.log(e.type, e.key, e.value?.title))
 * await db.todos.put({ id: 1, title: 'Write docs', done: false }) // logs: create 1 Write docs
 *
 * @throws {ChangecastStateError} when the database is already open, or already has a feed.
 * @throws {InvalidOptionsError} for unknown or malformed options.
 */
export function changecast<DB extends Dexie>(db: DB, options: ChangecastOptions = {}): Feed<TableMap<DB>> {
  if (!db || typeof (db as Partial<Dexie>).use !== 'function' || typeof (db as Partial<Dexie>).isOpen !== 'function') {
    throw new InvalidOptionsError('changecast(db): expected a Dexie instance as the first argument.')
  }
  validateOptions(options)
  if (db.isOpen()) {
    throw new ChangecastStateError(
      `changecast(db) must be called before the database '${db.name}' opens: Dexie builds its middleware stack on open. ` +
        'Call changecast(db) right after db.version(...).stores(...), or db.close() first and reopen.',
    )
  }
  const existing = feeds.get(db)
  if (existing && !existing.closed) {
    throw new ChangecastStateError(
      `The database '${db.name}' already has a Changecast feed. Share that feed, or call feed.close() before creating another.`,
    )
  }

  const isCaptured = capturedTables(options.tables)
  const keepPrevious = previousTables(options.previous)
  const origin = randomId()
  const bus = new Bus()
  let active = true

  const staging = new Staging(
    origin,
    (tx, events) => {
      if (!active || events.length === 0) return
      const at = Date.now()
      for (const event of events) event.at = at
      const batch: ChangeBatch = { tx, origin, source: 'local', at, events }
      bus.publish(batch)
    },
    (error) =>
      bus.report(
        new ChangecastError('subscriber-failed', 'Changecast could not build the events of a commit.', {
          cause: error,
        }),
      ),
  )
  const middleware = createCaptureMiddleware({
    origin,
    staging,
    isActive: () => active,
    isCaptured,
    keepPrevious,
  })
  db.use(middleware)

  const catalog: TableCatalog = {
    declared: () => db.tables.map((table) => table.name),
    isCaptured,
  }

  const feed: Feed<AnyTables> = {
    origin,
    get closed() {
      return !active
    },
    on(filter: unknown, handler: (event: ChangeEvent) => void): Unsubscribe {
      checkHandler(handler, 'on')
      const matcher = parseFilter(filter, catalog)
      if (!active) return () => {}
      return bus.subscribe(matcher, handler)
    },
    onBatch(handler) {
      checkHandler(handler, 'onBatch')
      if (!active) return () => {}
      return bus.onBatch(handler)
    },
    onError(handler) {
      checkHandler(handler, 'onError')
      if (!active) return () => {}
      return bus.onError(handler)
    },
    close() {
      if (!active) return
      active = false
      bus.clear()
      // Takes effect when the database next opens; until then the middleware passes requests through.
      db.unuse({ stack: 'dbcore', name: CAPTURE_MIDDLEWARE_NAME })
    },
  } as Feed<AnyTables>
  feeds.set(db, feed)
  return feed as unknown as Feed<TableMap<DB>>
}

function checkHandler(handler: unknown, method: string): void {
  if (typeof handler !== 'function') {
    throw new InvalidFilterError(
      `feed.${method}(): the handler must be a function, got ${handler === null ? 'null' : typeof handler}.`,
    )
  }
}

/** Dexie's `$` tables (Dexie Cloud) and Changecast's own tables are never captured. */
export function isInternalTable(name: string): boolean {
  return name.startsWith('$') || name.startsWith('_changecast')
}

function capturedTables(option: ChangecastOptions['tables']): (name: string) => boolean {
  if (option === undefined) return (name) => !isInternalTable(name)
  if (typeof option === 'function') return (name) => !isInternalTable(name) && option(name) === true
  const names = new Set(option)
  return (name) => !isInternalTable(name) && names.has(name)
}

function previousTables(option: ChangecastOptions['previous']): (name: string) => boolean {
  if (option === undefined || option === true) return () => true
  if (option === false) return () => false
  const names = new Set(option)
  return (name) => names.has(name)
}

function validateOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionsError('changecast(db, options): options must be an object.')
  }
  const given = options as Record<string, unknown>
  for (const key of Object.keys(given)) {
    if (!OPTION_KEYS.includes(key)) {
      throw new InvalidOptionsError(`Unknown option '${key}'. Known options: ${OPTION_KEYS.join(', ')}.`)
    }
  }
  const { tables, previous } = given
  if (tables !== undefined && typeof tables !== 'function' && !isStringList(tables)) {
    throw new InvalidOptionsError("Option 'tables' must be a list of table names or a function (name) => boolean.")
  }
  if (previous !== undefined && typeof previous !== 'boolean' && !isStringList(previous)) {
    throw new InvalidOptionsError("Option 'previous' must be true, false or a list of table names.")
  }
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string')
}
