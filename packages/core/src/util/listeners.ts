import type { Unsubscribe } from '../types.js'

/**
 * A set of handlers with isolated calls: `emit` runs every handler even when one throws,
 * and hands the failure to `fail` (by default `console.error`), so a throwing handler can
 * never stop the code that emitted.
 */
export class Listeners<T> {
  readonly #handlers = new Set<(value: T) => void>()
  readonly #fail: (error: unknown) => void

  constructor(fail: (error: unknown) => void = (error) => console.error(error)) {
    this.#fail = fail
  }

  get size(): number {
    return this.#handlers.size
  }

  /** Adds a handler; the returned function removes it (calling it twice is harmless). */
  add(handler: (value: T) => void): Unsubscribe {
    // Wrapped, so adding the same function twice makes two subscriptions that end separately.
    const entry = (value: T): void => handler(value)
    this.#handlers.add(entry)
    return () => {
      this.#handlers.delete(entry)
    }
  }

  emit(value: T): void {
    for (const handler of [...this.#handlers]) {
      try {
        handler(value)
      } catch (error) {
        this.#fail(error)
      }
    }
  }

  clear(): void {
    this.#handlers.clear()
  }
}
