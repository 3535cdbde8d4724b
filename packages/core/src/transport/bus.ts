import mitt from 'mitt'
import { SubscriberError, type ChangecastError } from '../errors.js'
import type { ChangeBatch, ChangeEvent, Unsubscribe } from '../types.js'
import { deepFreeze } from '../util/freeze.js'
import { Listeners } from '../util/listeners.js'
import type { Matcher } from './parse-filter.js'

type Listener<T> = (value: T) => void

/**
 * The in-page bus: one mitt emitter keyed by table name, so a subscriber to `todos`
 * never sees (or pays for) events of other tables. Every handler is isolated: one that
 * throws is reported and the others still run.
 */
export class Bus {
  readonly #tables = mitt<Record<string, ChangeEvent>>()
  readonly #batches = new Listeners<ChangeBatch>((error) => this.report(new SubscriberError(error)))
  readonly #errors = new Listeners<ChangecastError>()
  readonly #live = new Set<() => void>()
  /** Changecast's own batch listeners (e.g. the sync): not counted as subscriptions. */
  readonly #taps = new Listeners<ChangeBatch>()

  /** Number of live subscriptions (events, batches and errors). */
  get size(): number {
    return this.#live.size
  }

  subscribe(matcher: Matcher, handler: Listener<ChangeEvent>): Unsubscribe {
    const { test } = matcher
    const run = (event: ChangeEvent): void => {
      if (test && !test(event)) return
      try {
        handler(event)
      } catch (error) {
        this.report(new SubscriberError(error))
      }
    }
    const wildcard = (_type: string, event: ChangeEvent): void => run(event)
    const tables = matcher.tables
    if (tables) tables.forEach((table) => this.#tables.on(table, run))
    else this.#tables.on('*', wildcard)
    return this.#track(() => {
      if (tables) tables.forEach((table) => this.#tables.off(table, run))
      else this.#tables.off('*', wildcard)
    })
  }

  onBatch(handler: Listener<ChangeBatch>): Unsubscribe {
    return this.#track(this.#batches.add(handler))
  }

  onError(handler: Listener<ChangecastError>): Unsubscribe {
    return this.#track(this.#errors.add(handler))
  }

  /**
   * Delivers a committed batch: each event to its subscribers, in order, then the batch.
   * The batch and its events are frozen first: every subscriber gets the same objects, and
   * one that tries to change them throws (reported as a `SubscriberError`) instead of
   * changing what the others see.
   */
  publish(batch: ChangeBatch): void {
    deepFreeze(batch)
    for (const event of batch.events) this.#tables.emit(event.table, event)
    this.#batches.emit(batch)
    this.#taps.emit(batch)
  }

  /** Adds an internal batch listener (not counted in `size`, not removed by `clear()`). */
  tap(handler: Listener<ChangeBatch>): Unsubscribe {
    return this.#taps.add(handler)
  }

  /** Hands an error to `onError` handlers, or to `console.error` when there are none. */
  report(error: ChangecastError): void {
    if (this.#errors.size === 0) console.error(error)
    else this.#errors.emit(error)
  }

  /** Removes every subscription. */
  clear(): void {
    for (const remove of [...this.#live]) remove()
  }

  #track(remove: () => void): Unsubscribe {
    const unsubscribe = (): void => {
      if (this.#live.delete(unsubscribe)) remove()
    }
    this.#live.add(unsubscribe)
    return unsubscribe
  }
}
