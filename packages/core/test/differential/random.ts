/** A seeded pseudo-random generator (mulberry32): the same seed gives the same sequence everywhere. */
export class Random {
  #state: number

  constructor(seed: number) {
    this.#state = seed >>> 0
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }

  chance(p: number): boolean {
    return this.next() < p
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!
  }

  /** A few distinct items of `items`, in their order. */
  some<T>(items: readonly T[], min = 1): T[] {
    const chosen = items.filter(() => this.chance(0.5))
    while (chosen.length < Math.min(min, items.length)) {
      const item = this.pick(items)
      if (!chosen.includes(item)) chosen.push(item)
    }
    return items.filter((item) => chosen.includes(item))
  }
}
