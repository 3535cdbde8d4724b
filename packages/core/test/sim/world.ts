// A deterministic world for the sync: simulated time and a seeded scheduler in place of
// the machine's. Every timer (setTimeout, setInterval, setImmediate — fake-indexeddb's
// tasks included), every network delivery (fetch, each chunk of a stream) and every
// BroadcastChannel message is a task in one queue, ordered by simulated time, then by
// the order it was scheduled; the delays of deliveries are drawn from the seed. Between
// two tasks the real event loop turns once, so every promise chain a task started settles
// before the next task runs. Nothing else is asynchronous in the world (no real I/O, no
// real clock), so one seed replays exactly, under any load, on any machine: the run's
// trace (every request, reply, stream chunk and tab message, with its simulated time)
// hashes the same every time.
//
// Anchors: FoundationDB's simulation testing and TigerBeetle's VOPR. Installed for one
// run at a time (the globals are the process's).
import { createHash } from 'node:crypto'
import { installBrowserGlobals, seeded } from '../sync-helpers.js'

interface Task {
  id: number
  at: number
  run: () => void
  /** Repeats every `every` ms (setInterval). */
  every?: number
}

/** A timer handle shaped like Node's (some code calls `unref()`). */
class Handle {
  constructor(readonly id: number) {}
  unref(): this {
    return this
  }
  ref(): this {
    return this
  }
  hasRef(): boolean {
    return true
  }
  [Symbol.toPrimitive](): number {
    return this.id
  }
}

/** The real event loop's turn: every microtask and promise chain started so far settles. */
const realImmediate = globalThis.setImmediate
const turn = () => new Promise<void>((resolve) => realImmediate(resolve))

/** Thrown by {@link World.run} when the work did not settle. */
export class Stuck extends Error {}

export interface WorldOptions {
  seed: number
  /** Delivery delay of a network hop or a tab message, ms: [min, max]. @default [0, 3] */
  hop?: [number, number]
}

export class World {
  /** Simulated milliseconds since the start. */
  now = 0
  /** The world's randomness (deliveries, Math.random, crypto.randomUUID): the seed's. */
  readonly random: () => number
  /** Uncaught errors of tasks and unhandled rejections: each one fails the run. */
  readonly uncaught: unknown[] = []
  /** The last lines of the trace, for a failure's story. */
  readonly tail: string[] = []
  tasks = 0
  /** Every line of the trace, when asked for (SIM_TRACE=file writes it there). */
  readonly full: string[] | undefined = process.env.SIM_TRACE ? [] : undefined
  readonly #queue: Task[] = []
  readonly #byId = new Map<number, Task>()
  #next = 1
  readonly #hash = createHash('sha256')
  readonly #hop: [number, number]
  readonly #restore: Array<() => void> = []
  #browser?: ReturnType<typeof installBrowserGlobals>

  constructor({ seed, hop = [0, 3] }: WorldOptions) {
    this.random = seeded(seed * 7919 + 13)
    this.#hop = hop
  }

  /** A delivery delay drawn from the seed. */
  hop(): number {
    const [min, max] = this.#hop
    return Math.floor(min + this.random() * (max - min + 1))
  }

  /** Adds a line to the trace (hashed; the last 400 kept for a failure's story). */
  trace(line: string): void {
    const entry = `${this.now} ${line}`
    this.#hash.update(entry + '\n')
    this.full?.push(entry)
    this.tail.push(entry.length > 300 ? `${entry.slice(0, 300)}…` : entry)
    if (this.tail.length > 400) this.tail.shift()
  }

  /** The trace's hash so far. */
  digest(): string {
    return this.#hash.copy().digest('hex').slice(0, 16)
  }

  schedule(run: () => void, delay = 0, every?: number): Handle {
    const task: Task = { id: this.#next++, at: this.now + Math.max(0, Number(delay) || 0), run, every }
    this.#push(task)
    return new Handle(task.id)
  }

  cancel(handle: unknown): void {
    if (handle === undefined || handle === null) return
    const task = this.#byId.get(Number(handle))
    if (!task) return
    this.#byId.delete(task.id)
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.schedule(resolve, ms))
  }

  /** Sets the online state of the page (`navigator.onLine` and the window's events). */
  setOnline(online: boolean): void {
    this.#browser?.setOnline(online)
  }

  /**
   * Runs the world until `work` settles, and returns its result. Throws {@link Stuck} when
   * nothing is left to run while it waits (a deadlock), or when simulated time passes `limit`.
   */
  async run<T>(work: Promise<T>, limit: number, what: string): Promise<T> {
    let settled = false
    let value: T | undefined
    let failure: unknown
    let failed = false
    work.then(
      (result) => {
        settled = true
        value = result
      },
      (error: unknown) => {
        settled = true
        failed = true
        failure = error
      },
    )
    const end = this.now + limit
    for (;;) {
      await turn()
      if (settled) break
      const task = this.#pop()
      if (!task) throw new Stuck(`${what}: nothing left to run at ${this.now} ms, and it still waits`)
      if (task.at > end) {
        this.#push(task)
        throw new Stuck(`${what}: not done after ${limit} simulated ms`)
      }
      this.now = Math.max(this.now, task.at)
      this.tasks++
      if (task.every !== undefined) this.#push({ ...task, at: this.now + Math.max(1, task.every) })
      else this.#byId.delete(task.id)
      try {
        task.run()
      } catch (error) {
        this.uncaught.push(error)
      }
    }
    if (failed) throw failure
    return value as T
  }

  /** Installs the world in place of the process's timers, clock, randomness and page globals. */
  install(): void {
    const g = globalThis as Record<string, unknown>
    const replace = (target: Record<string, unknown>, key: string, value: unknown) => {
      const saved = Object.getOwnPropertyDescriptor(target, key)
      Object.defineProperty(target, key, { configurable: true, writable: true, value })
      this.#restore.push(() => {
        if (saved) Object.defineProperty(target, key, saved)
        else delete target[key]
      })
    }
    replace(g, 'setTimeout', (run: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) =>
      this.schedule(() => run(...args), ms),
    )
    replace(g, 'setInterval', (run: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) =>
      this.schedule(() => run(...args), Math.max(1, Number(ms) || 0), Math.max(1, Number(ms) || 0)),
    )
    replace(g, 'setImmediate', (run: (...args: unknown[]) => void, ...args: unknown[]) =>
      this.schedule(() => run(...args), 0),
    )
    for (const name of ['clearTimeout', 'clearInterval', 'clearImmediate'])
      replace(g, name, (handle: unknown) => this.cancel(handle))
    const start = Date.UTC(2026, 0, 1)
    replace(Date as unknown as Record<string, unknown>, 'now', () => start + this.now)
    replace(performance as unknown as Record<string, unknown>, 'now', () => this.now)
    replace(Math as unknown as Record<string, unknown>, 'random', () => this.random())
    replace(crypto as unknown as Record<string, unknown>, 'randomUUID', () => {
      const hex = Array.from({ length: 32 }, () => Math.floor(this.random() * 16).toString(16)).join('')
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`
    })
    replace(g, 'BroadcastChannel', channelClass(this))
    // What the client writes to the console (once per outage, rejections) goes to the trace.
    for (const level of ['log', 'info', 'warn', 'error', 'debug'])
      replace(console as unknown as Record<string, unknown>, level, (...args: unknown[]) =>
        this.trace(`console.${level} ${args.map(String).join(' ')}`),
      )
    const unhandled = (reason: unknown) => this.uncaught.push(reason)
    process.on('unhandledRejection', unhandled)
    this.#restore.push(() => process.off('unhandledRejection', unhandled))
    this.#browser = installBrowserGlobals()
    const browser = this.#browser
    this.#restore.push(() => browser.uninstall())
  }

  uninstall(): void {
    for (const restore of this.#restore.splice(0).reverse()) restore()
  }

  #push(task: Task): void {
    this.#byId.set(task.id, task)
    const queue = this.#queue
    queue.push(task)
    let i = queue.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(queue[i]!, queue[parent]!)) break
      ;[queue[i], queue[parent]] = [queue[parent]!, queue[i]!]
      i = parent
    }
  }

  #pop(): Task | undefined {
    const queue = this.#queue
    for (;;) {
      const top = queue[0]
      if (!top) return undefined
      const last = queue.pop()!
      if (queue.length > 0) {
        queue[0] = last
        let i = 0
        for (;;) {
          const left = 2 * i + 1
          const right = left + 1
          let least = i
          if (left < queue.length && before(queue[left]!, queue[least]!)) least = left
          if (right < queue.length && before(queue[right]!, queue[least]!)) least = right
          if (least === i) break
          ;[queue[i], queue[least]] = [queue[least]!, queue[i]!]
          i = least
        }
      }
      // Cancelled tasks are skipped (they left the index).
      if (this.#byId.get(top.id) === top) return top
    }
  }
}

const before = (a: Task, b: Task) => a.at < b.at || (a.at === b.at && a.id < b.id)

/**
 * BroadcastChannel in the world: a message reaches every other open channel of its name
 * after a seeded delay, in the order it was sent (per sender and receiver, as browsers
 * keep it); the data is cloned when sent (a value that cannot be cloned throws there).
 */
function channelClass(world: World) {
  const open = new Map<string, Set<SimChannel>>()
  // The trace names a channel by the order it was first opened (names hold run counters).
  const numbers = new Map<string, number>()
  class SimChannel extends EventTarget {
    onmessage: ((event: MessageEvent) => void) | null = null
    onmessageerror: ((event: MessageEvent) => void) | null = null
    readonly #last = new WeakMap<SimChannel, number>()
    #closed = false
    constructor(readonly name: string) {
      super()
      if (!numbers.has(name)) numbers.set(name, numbers.size)
      const set = open.get(name) ?? new Set()
      open.set(name, set.add(this))
    }
    postMessage(data: unknown): void {
      if (this.#closed) throw new DOMException('BroadcastChannel is closed.', 'InvalidStateError')
      const copy = structuredClone(data)
      world.trace(`tab-message ${numbers.get(this.name)} ${JSON.stringify(copy) ?? ''}`)
      for (const other of open.get(this.name) ?? []) {
        if (other === this) continue
        const at = Math.max(this.#last.get(other) ?? 0, world.now + world.hop())
        this.#last.set(other, at)
        world.schedule(() => other.#deliver(structuredClone(copy)), at - world.now)
      }
    }
    #deliver(data: unknown): void {
      if (this.#closed) return
      const event = new MessageEvent('message', { data })
      this.onmessage?.(event)
      this.dispatchEvent(event)
    }
    close(): void {
      this.#closed = true
      open.get(this.name)?.delete(this)
    }
  }
  return SimChannel
}
