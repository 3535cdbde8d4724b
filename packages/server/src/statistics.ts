import type { Database } from './db/port.js'
import type { Names } from './names.js'

/** Fewest changes between two `analyze` runs. */
const MIN_CHANGES = 1000

/**
 * Keeps the query planner's statistics of the log and the entities current. PGlite has no
 * autovacuum, so without this its planner never learns how many rows the log holds, and a
 * snapshot page is read by sorting every row at or below its revision (hundreds of ms per
 * page at 100,000 rows) instead of walking the entity index (tens). On PostgreSQL
 * autovacuum does the same, later; an extra `analyze` there is harmless. Runs at start, and
 * again once the changes written since reach the rows counted last time (at least 1,000):
 * the planner scales its estimates with the table's size, so the statistics only need to
 * follow its shape, and a busy log is analyzed a few times, not every few seconds. In the
 * background and one at a time.
 */
export class Statistics {
  readonly #db: Database
  readonly #t: Names
  #since = 0
  #rows = 0
  #running: Promise<void> | undefined

  constructor(db: Database, t: Names) {
    this.#db = db
    this.#t = t
  }

  /** Analyzes now (in the background). */
  start(): void {
    this.#run()
  }

  /** `changes` more were written (committed or about to be). */
  wrote(changes: number): void {
    this.#since += changes
    if (this.#since >= Math.max(MIN_CHANGES, this.#rows)) this.#run()
  }

  /** Resolves once no run is going on. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running
  }

  #run(): void {
    if (this.#running) return
    const written = this.#since
    this.#since = 0
    this.#running = (async () => {
      try {
        await this.#db.query(`analyze ${this.#t.changes}, ${this.#t.entities}`)
        const [row] = await this.#db.query<{ rows: number | string }>(
          `select greatest(reltuples, 0) as rows from pg_class where oid = $1::regclass`,
          [this.#t.changes],
        )
        this.#rows = Number(row?.rows ?? this.#rows + written)
      } catch (error) {
        console.error(`[changecast-server] analyze failed: ${(error as Error).message}`)
      } finally {
        this.#running = undefined
      }
    })()
  }
}
