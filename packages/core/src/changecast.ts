import type Dexie from 'dexie'
import { createCaptureMiddleware, CAPTURE_MIDDLEWARE_NAME } from './capture/middleware.js'
import { Staging } from './capture/stage.js'
import { ChangecastStateError, InvalidFilterError, InvalidOptionsError, type ChangecastError } from './errors.js'
import type { SyncAdapter, SyncController, SyncHost } from './sync-port.js'
import { declareLogTable, DEFAULT_RETENTION, openLog, type LogRetention } from './log/changelog.js'
import { LogWriter } from './capture/log-writer.js'
import { Bus } from './transport/bus.js'
import { Listeners } from './util/listeners.js'
import { Delivery, type ResyncInfo } from './transport/delivery.js'
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
  Topic,
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
  /** The database this feed captures (framework bindings read initial values from it). */
  readonly db: Dexie
  /** Number of live subscriptions (`on`, `onBatch`, `onError`): handy to check that views clean up. */
  readonly listenerCount: number
  /** True once {@link Feed.close} was called. */
  readonly closed: boolean
  /**
   * True when batches reach other tabs and workers of this origin (a BroadcastChannel is
   * open). False with `channel: false` or where BroadcastChannel does not exist; local
   * events work either way.
   */
  readonly crossTab: boolean
  /**
   * The changelog rev of the last batch delivered to this context's subscribers
   * (`undefined` with `log: false`, or before the database opened).
   */
  readonly rev: number | undefined

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
  on<N extends TableName<Tables> = TableName<Tables>>(
    topicOrFilter: Topic<Tables, N> | ChangeFilter<Tables, N>,
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
   * Server sync: status, `flush()`, `settled()`, `pause()`, `resume()`, errors, rejections
   * and set-aside items. Present when the `sync` option is given.
   */
  readonly sync: SyncController | undefined

  /**
   * Committed batches after changelog rev `rev`, oldest first, for late subscribers and
   * UIs that load and then listen: `const batches = await feed.since(lastSeenRev)`.
   * Their `source` is `local` for this context's own commits, else `tab` (or `remote`).
   * @throws {ChangecastStateError} (as a rejection) when the changelog is off.
   * @throws {ChangecastError} (as a rejection, code `history-unavailable`) when the
   * changelog cannot replay every commit after `rev`: older rows were compacted, or a
   * server snapshot was loaded since (recorded by its count only). Read the tables again
   * and continue from `feed.rev`.
   */
  since(rev: number): Promise<BatchOf<Tables>[]>

  /**
   * Reads the changelog and delivers whatever this context has not delivered yet. Runs
   * by itself when a page wakes up (resumed, restored from the back/forward cache,
   * visible again) and after a gap; call it when you know the context was asleep.
   */
  catchUp(): Promise<void>

  /**
   * Called when this context may have missed changes it cannot replay: messages lost
   * with `log: false`, the missed commits already compacted out of the changelog, or
   * missed pages of a server snapshot (which the changelog records by their count only).
   * Reload your data from the database when it fires.
   */
  onResync(handler: (info: ResyncInfo) => void): Unsubscribe

  /**
   * Removes every subscription and stops capturing. The database keeps working; writes
   * after `close()` produce no events. Calling it twice is harmless.
   */
  close(): void
}

const feeds = new WeakMap<Dexie, { readonly closed: boolean }>()
const OPTION_KEYS = ['tables', 'previous', 'log', 'channel', 'sync']

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
      `changecast(db) must be called before the database '${db.name}' opens (Dexie builds its middleware then): ` +
        'right after db.version(...).stores(...), or after db.close().',
    )
  }
  const existing = feeds.get(db)
  if (existing && !existing.closed) {
    throw new ChangecastStateError(
      `The database '${db.name}' already has a Changecast feed: share it, or call feed.close() first.`,
    )
  }

  const isCaptured = capturedTables(options.tables)
  const keepPrevious = previousTables(options.previous)
  const retention = logRetention(options.log)
  if (options.sync && !retention) {
    throw new InvalidOptionsError("Option 'sync' needs the changelog, its outbox: remove log: false.")
  }
  if (retention) declareLogTable(db, options.sync?.stores ?? {})
  const origin = randomId()
  const bus = new Bus()
  const resyncs = new Listeners<ResyncInfo>()
  let active = true
  const resync = (info: ResyncInfo): void => resyncs.emit(info)

  const delivery = new Delivery({
    db,
    origin,
    bus,
    log: retention,
    channel: options.channel === undefined ? `changecast:${db.name}` : options.channel,
    isTable: (name) => isCaptured(name) && db.tables.some((table) => table.name === name),
    resync,
  })
  const staging = new Staging(origin, (stage, events) => {
    if (!active) return
    if (stage.log.dropped) delivery.skip(stage.log.dropped)
    if (events.length === 0) return
    const { rev, at = Date.now() } = stage.log
    for (const event of events) {
      event.at = at
      if (rev !== undefined) event.rev = rev
    }
    const batch: ChangeBatch = { tx: stage.tx, origin: stage.origin, source: stage.source, at, events }
    if (rev !== undefined) batch.rev = rev
    delivery.local(batch, stage.unlogged)
  })
  const middleware = createCaptureMiddleware({
    staging,
    isActive: () => active,
    isCaptured,
    keepPrevious,
    log: retention ? new LogWriter((error) => bus.report(error)) : undefined,
  })
  db.use(middleware)
  const host: SyncHost = {
    db,
    origin,
    isCaptured,
    onBatch: (listener) => bus.tap(listener),
    markRemote(transaction, remoteOrigin, tx, { removed, unlogged } = {}) {
      const stage = Object.assign(staging.watch(transaction.idbtrans), {
        source: 'remote',
        origin: remoteOrigin,
        tx,
        removed,
        unlogged,
      } as const)
      return () => stage.log.rev
    },
    resync,
  }
  const sync = options.sync?.start(host)
  if (sync) delivery.keep(() => sync.keepFrom())
  if (retention) {
    // Sticky: runs on every open, before the database is handed to the application.
    db.on('ready', (vipDb: Dexie) => (active ? openLog(vipDb).then((log) => delivery.start(log)) : undefined), true)
  }

  /** Checks the handler, then subscribes while the feed is open (a closed feed subscribes nothing). */
  const subscribe = (handler: unknown, method: string, add: () => Unsubscribe): Unsubscribe => {
    checkHandler(handler, method)
    return active ? add() : () => {}
  }

  const catalog: TableCatalog = {
    declared: () => db.tables.map((table) => table.name),
    isCaptured,
  }

  const feed: Feed<AnyTables> = {
    origin,
    db,
    get listenerCount() {
      return bus.size + resyncs.size
    },
    get closed() {
      return !active
    },
    get crossTab() {
      return active && delivery.crossTab
    },
    get rev() {
      return delivery.rev
    },
    sync: sync,
    since(rev: number) {
      if (!retention) {
        return Promise.reject(new ChangecastStateError('feed.since() needs the changelog, which is off (log: false).'))
      }
      return delivery.since(rev)
    },
    catchUp() {
      return delivery.catchUp()
    },
    onResync: (handler) => subscribe(handler, 'onResync', () => resyncs.add(handler)),
    on(filter: unknown, handler: (event: ChangeEvent) => void): Unsubscribe {
      checkHandler(handler, 'on')
      const matcher = parseFilter(filter, catalog)
      return subscribe(handler, 'on', () => bus.subscribe(matcher, handler))
    },
    onBatch: (handler) => subscribe(handler, 'onBatch', () => bus.onBatch(handler)),
    onError: (handler) => subscribe(handler, 'onError', () => bus.onError(handler)),
    close() {
      if (!active) return
      active = false
      bus.clear()
      resyncs.clear()
      sync?.close()
      delivery.close()
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

/** Dexie's `$` tables (Dexie Cloud), Changecast's own tables and a table named `*` are never captured. */
function isInternalTable(name: string): boolean {
  // '*' would be the in-page bus's wildcard.
  return name.startsWith('$') || name.startsWith('_changecast') || name === '*'
}

function capturedTables(option: ChangecastOptions['tables']): (name: string) => boolean {
  if (option === undefined) return (name) => !isInternalTable(name)
  if (typeof option === 'function') return (name) => !isInternalTable(name) && option(name) === true
  const names = new Set(option)
  return (name) => !isInternalTable(name) && names.has(name)
}

function logRetention(option: ChangecastOptions['log']): Required<LogRetention> | undefined {
  if (option === false) return undefined
  if (option === undefined || option === true) return DEFAULT_RETENTION
  return { ...DEFAULT_RETENTION, ...option }
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
      throw new InvalidOptionsError(`Unknown option '${key}'. Known: ${OPTION_KEYS.join(', ')}.`)
    }
  }
  const { tables, previous, log, channel, sync } = given
  if (sync !== undefined) validateSync(sync)
  if (channel !== undefined && channel !== false && (typeof channel !== 'string' || channel === '')) {
    throw new InvalidOptionsError("Option 'channel' must be a channel name or false.")
  }
  if (log !== undefined && typeof log !== 'boolean') {
    const { maxEntries, maxAge, ...rest } = (
      typeof log === 'object' && log !== null ? log : { invalid: true }
    ) as Record<string, unknown>
    if (Object.keys(rest).length > 0 || !isPositiveOrUndefined(maxEntries) || !isPositiveOrUndefined(maxAge)) {
      throw new InvalidOptionsError("Option 'log' must be true, false or { maxEntries?: number > 0, maxAge?: ms > 0 }.")
    }
  }
  if (tables !== undefined && typeof tables !== 'function' && !isStringList(tables)) {
    throw new InvalidOptionsError("Option 'tables' must be a list of table names or a function (name) => boolean.")
  }
  if (previous !== undefined && typeof previous !== 'boolean' && !isStringList(previous)) {
    throw new InvalidOptionsError("Option 'previous' must be true, false or a list of table names.")
  }
}

function validateSync(sync: unknown): void {
  const adapter = sync as Partial<SyncAdapter> | null
  if (
    typeof adapter !== 'object' ||
    adapter === null ||
    typeof adapter.start !== 'function' ||
    typeof adapter.stores !== 'object'
  ) {
    throw new InvalidOptionsError("Option 'sync' takes an adapter: httpSync({ url }) from '@changecast/core/sync'.")
  }
}

function isPositiveOrUndefined(value: unknown): boolean {
  return value === undefined || (typeof value === 'number' && value > 0)
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string')
}
