// In-page benchmark cases. A round sets up (not timed), runs the operation (timed) and, on
// a database of its own, tears it down.
import Dexie, { liveQuery } from 'dexie'
import { changecast, type ChangeBatch, type ChangeEvent } from '@changecast/core'
import { Bus } from '../../packages/core/src/transport/bus'
import { parseFilter } from '../../packages/core/src/transport/parse-filter'
import { open, type Row, type Subject, type Variant } from './variants'

const now = () => performance.now()
const rows = (n: number, v = 0): Row[] =>
  Array.from({ length: n }, (_, id) => ({ id, v, title: `task ${id}`, done: id % 2 === 0 }))

interface Workload {
  /** Rows the case works on. */
  size: number
  /**
   * The operation consumes its data (deletes, clear) or needs it absent (new rows): every
   * round runs on a new database, as its raw time depends on the database's history (raw
   * `clear()` of 10,000 rows takes about 14 ms in a new database, 25 ms in one that was
   * cleared and seeded again a few times). Otherwise one database per variant serves every
   * round (each round writes new values, so updates stay updates).
   */
  fresh?: boolean
  /** Before the first round of a database: stores the rows the case works on. */
  setup?: (subject: Subject, size: number) => Promise<void>
  run: (subject: Subject, size: number, round: number) => Promise<unknown>
}

/**
 * Seeds natively, around every variant's capture: seeding is not measured, and through a
 * slow variant (hooks, dexie-observable) it took longer than the measured write itself.
 * Every variant also starts from the same stored data (no seed events in a changelog).
 */
const seed = async ({ db }: Subject, size: number) => {
  const tx = db.backendDB().transaction('items', 'readwrite')
  const items = tx.objectStore('items')
  for (const row of rows(size)) items.put(row)
  await new Promise((resolve, reject) => {
    tx.oncomplete = resolve
    tx.onabort = () => reject(tx.error ?? new Error('seeding aborted'))
  })
}

/** Throughput cases: what the application's write pays. */
export const workloads: Record<string, Workload> = {
  'bulkPut-10k-new': { size: 10_000, fresh: true, run: ({ db }, n) => db.items.bulkPut(rows(n, 1)) },
  'bulkPut-10k-update': { size: 10_000, setup: seed, run: ({ db }, n, round) => db.items.bulkPut(rows(n, round + 1)) },
  'bulkDelete-10k': {
    size: 10_000,
    fresh: true,
    setup: seed,
    run: ({ db }, n) => db.items.bulkDelete(Array.from({ length: n }, (_, i) => i)),
  },
  'clear-10k': { size: 10_000, fresh: true, setup: seed, run: ({ db }) => db.items.clear() },
  'put-1k-single': {
    size: 1_000,
    fresh: true,
    async run({ db }, n) {
      for (let id = 0; id < n; id++) await db.items.put({ id, v: 1, title: `task ${id}`, done: false })
    },
  },
  'update-1k-single': {
    size: 1_000,
    setup: seed,
    async run({ db }, n, round) {
      for (let id = 0; id < n; id++) await db.items.update(id, { v: round + 1 })
    },
  },
  'modify-10k': {
    size: 10_000,
    setup: seed,
    run: ({ db }, _n, round) =>
      db.items
        .where('id')
        .aboveOrEqual(0)
        .modify({ v: round + 1 }),
  },
}

const prepared = new Map<string, Subject>()
const sizeOf = (name: string, scale: number) => Math.max(1, Math.round(workloads[name]!.size * scale))

/** Opens (and seeds) the database a variant keeps across rounds, for cases that allow it. */
async function prepare(name: string, variant: Variant, scale: number) {
  const workload = workloads[name]!
  if (workload.fresh) return false
  const subject = await open(variant)
  await workload.setup?.(subject, sizeOf(name, scale))
  prepared.set(variant, subject)
  return true
}

/** One timed round of `name` for `variant`; returns ms. */
async function measure(name: string, variant: Variant, round: number, scale: number) {
  const workload = workloads[name]!
  const size = sizeOf(name, scale)
  const kept = prepared.get(variant)
  const subject = kept ?? (await open(variant))
  try {
    if (!kept) await workload.setup?.(subject, size)
    const start = now()
    await workload.run(subject, size, round)
    return now() - start
  } finally {
    if (!kept) await subject.close()
  }
}

async function finish() {
  for (const subject of prepared.values()) await subject.close()
  prepared.clear()
  return true
}

// ---- cross-tab latency: page A commits, page B's handler runs --------------------------

const stamp = () => performance.timeOrigin + performance.now()
let latencyDb: Dexie | undefined
const received = new Map<number, number>()
const committedAt = new Map<number, number>()
let cleanup: Array<() => void> = []

/** Page B: starts listening the way `variant` would (`raw-broadcastchannel`, `dexie-livequery`, `changecast`). */
async function listen(variant: string, name: string) {
  const ack = new BroadcastChannel(`${name}-ack`)
  const seen = (i: number) => {
    if (received.has(i)) return
    received.set(i, stamp())
    ack.postMessage(i)
  }
  cleanup.push(() => ack.close())
  if (variant === 'raw-broadcastchannel') {
    const channel = new BroadcastChannel(name)
    channel.onmessage = (event: MessageEvent<number>) => seen(event.data)
    cleanup.push(() => channel.close())
    return
  }
  const db = new Dexie(name, { addons: [] })
  db.version(1).stores({ items: 'id' })
  latencyDb = db
  if (variant === 'changecast') {
    const feed = changecast(db)
    feed.on('items', (event) => seen(event.key as number))
    cleanup.push(() => feed.close())
    await db.open()
    return
  }
  await db.open()
  const subscription = liveQuery(() => db.table('items').orderBy(':id').lastKey()).subscribe((key) => {
    if (typeof key === 'number') seen(key)
  })
  cleanup.push(() => subscription.unsubscribe())
}

/** Page A: commits `count` transactions one at a time, each after B acknowledged the previous one. */
async function emit(variant: string, name: string, count: number) {
  const ack = new BroadcastChannel(`${name}-ack`)
  let waiting: ((i: number) => void) | undefined
  ack.onmessage = (event: MessageEvent<number>) => waiting?.(event.data)
  const acked = (i: number) =>
    new Promise<void>((resolve) => {
      waiting = (j) => j === i && resolve()
    })
  let channel: BroadcastChannel | undefined
  let db: Dexie | undefined
  if (variant === 'raw-broadcastchannel') channel = new BroadcastChannel(name)
  else {
    db = new Dexie(name, { addons: [] })
    db.version(1).stores({ items: 'id' })
    if (variant === 'changecast') {
      const feed = changecast(db)
      // The commit moment: Changecast delivers local events in the transaction's complete event.
      feed.on('items', (event) => committedAt.set(event.key as number, stamp()))
      cleanup.push(() => feed.close())
    }
    await db.open()
  }
  for (let i = 0; i < count; i++) {
    const done = acked(i)
    if (channel) {
      committedAt.set(i, stamp())
      channel.postMessage(i)
    } else if (variant === 'changecast') {
      await db!.table('items').put({ id: i, v: i })
    } else {
      const trans = db!.transaction('rw', 'items', () => db!.table('items').put({ id: i, v: i }))
      await trans
      committedAt.set(i, stamp())
    }
    await done
  }
  channel?.close()
  ack.close()
  db?.close()
}

function resetLatency() {
  cleanup.forEach((dispose) => dispose())
  cleanup = []
  received.clear()
  committedAt.clear()
  latencyDb?.close()
  latencyDb = undefined
  return true
}

// ---- in-page dispatch --------------------------------------------------------------------

/**
 * Events per second delivered to `subscribers` filtered subscribers: one batch long enough
 * that delivering it takes at least `minMs` (far above the page's 0.1 ms timer), through
 * Changecast's own bus and filter parser (what `feed.on` subscribes with). The events are
 * those of a real commit captured by Changecast, repeated under new keys up to the size
 * needed: a commit of a million rows would take a minute of IndexedDB per round.
 * Returns each measured round's rate, and the batch size.
 */
async function dispatch(subscribers: number, rounds: number, minMs: number) {
  const db = new Dexie(`dispatch-${Date.now()}`, { addons: [] })
  db.version(1).stores({ items: 'id', other: 'id' })
  const feed = changecast(db, { channel: false, log: false })
  let template: ChangeBatch | undefined
  feed.onBatch((batch) => (template = batch as ChangeBatch))
  await db.open()
  await db.table('items').bulkAdd(rows(1_000))
  feed.close()
  db.close()
  await Dexie.delete(db.name)
  const events = template!.events
  const batchOf = (size: number): ChangeBatch => ({
    ...template!,
    events: Array.from({ length: size }, (_, id) => {
      const event = events[id % events.length]!
      return { ...event, key: id, value: { ...(event.value as Row), id } } as ChangeEvent
    }),
  })
  const catalog = { declared: () => ['items', 'other'], isCaptured: () => true }
  const bus = new Bus()
  for (let s = 0; s < subscribers; s++) {
    // A realistic mix: table topics, key filters and type filters.
    const filter = s % 3 === 0 ? 'items' : s % 3 === 1 ? { table: 'items', key: s, type: 'create' } : { table: 'other' }
    bus.subscribe(parseFilter(filter, catalog), () => {})
  }
  let delivered = 0
  bus.subscribe(parseFilter('*', catalog), () => void delivered++)
  const time = (batch: ChangeBatch) => {
    const start = now()
    bus.publish(batch)
    return now() - start
  }
  // Every measured round must take at least minMs: grow the batch and measure again until
  // the fastest round does (the first tries warm the code up).
  let size = 50_000
  for (;;) {
    const times: number[] = []
    for (let round = 0; round < rounds; round++) {
      const batch = batchOf(size)
      delivered = 0
      times.push(time(batch))
      if (delivered !== size) throw new Error(`dispatch: ${delivered} of ${size} events delivered`)
    }
    const fastest = Math.min(...times)
    if (fastest >= minMs) return { rates: times.map((ms) => size / (ms / 1000)), size }
    size = Math.ceil((size * minMs * 1.25) / fastest)
  }
}

// ---- memory --------------------------------------------------------------------------------

// One feed per memory case, kept open between calls: the runner measures the heap after a
// warm-up call and again after the measured call, so only growth that stays is counted.
let memoryDb: { db: Dexie; close: () => Promise<void> } | undefined
let memoryFeed: ReturnType<typeof changecast> | undefined
let eventCount = 0

async function memoryFeedFor(name: string) {
  if (memoryFeed) return memoryFeed
  const db = new Dexie(`memory-${name}-${Date.now()}`, { addons: [] })
  db.version(1).stores({ items: 'id' })
  const feed = changecast(db, { channel: false })
  feed.on('items', () => {
    eventCount++
  })
  await db.open()
  memoryFeed = feed
  memoryDb = {
    db,
    close: async () => {
      feed.close()
      db.close()
      await Dexie.delete(db.name)
    },
  }
  return feed
}

/** Subscribe/unsubscribe cycles on one feed. */
async function subscribeCycles(cycles: number) {
  const feed = await memoryFeedFor('subscriptions')
  for (let i = 0; i < cycles; i++) {
    const off = feed.on({ table: 'items', key: i }, () => {})
    const offBatch = feed.onBatch(() => {})
    off()
    offBatch()
  }
  return feed.listenerCount
}

/** Pushes `total` events through one subscriber, in batches of 10,000 (the changelog keeps its default retention). */
async function manyEvents(total: number) {
  const feed = await memoryFeedFor('events')
  for (let done = 0; done < total; done += 10_000) {
    await feed.db.table('items').bulkPut(rows(10_000, done))
  }
  return eventCount
}

const bench = {
  prepare,
  measure,
  finish,
  listen,
  emit,
  latencies: () => ({ committedAt: [...committedAt], received: [...received] }),
  resetLatency,
  dispatch,
  subscribeCycles,
  manyEvents,
  releaseMemory: async () => {
    await memoryDb?.close()
    memoryDb = undefined
    memoryFeed = undefined
    eventCount = 0
    return true
  },
}

declare global {
  interface Window {
    bench: typeof bench
  }
}
window.bench = bench
document.body.dataset.ready = 'true'
