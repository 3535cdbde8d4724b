import Dexie, { type DBCoreQueryRequest } from 'dexie'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { RACED, runSeed, type Failure } from '../differential/harness.js'
import type { FuzzDb } from '../differential/program.js'

/**
 * How many seeds: `FUZZ_SEEDS` (Node) or `VITE_FUZZ_SEEDS` (browser) for a longer run, else
 * `fallback`; `FUZZ_SEED` / `VITE_FUZZ_SEED` replays one seed. Seeds run from `FUZZ_FROM` (default 1).
 */
function seeds(fallback: number): number[] {
  const env = {
    ...(globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env,
    ...(import.meta as { env?: Record<string, string | undefined> }).env,
  }
  const one = env.FUZZ_SEED ?? env.VITE_FUZZ_SEED
  if (one) return [Number(one)]
  const count = Number(env.FUZZ_SEEDS ?? env.VITE_FUZZ_SEEDS ?? fallback)
  const from = Number(env.FUZZ_FROM ?? env.VITE_FUZZ_FROM ?? 1)
  return Array.from({ length: count }, (_, i) => from + i)
}

const report = (failure: Failure) =>
  `seed ${failure.seed}, after step ${failure.step + 1}: ${failure.problem}\n\nThe program (shrunk; replay with FUZZ_SEED=${failure.seed}):\n${failure.program}`

/**
 * The same seeded program against plain Dexie and Dexie + Changecast (see
 * `differential/harness.ts`). Run in Node (fake-indexeddb) and in Chromium.
 */
export function differentialSuite(fallbackSeeds: number): void {
  // Dexie's debug mode reports every failed request of a transaction (the programs make
  // many, on purpose, alike on both databases) on the console; apps run without it.
  const debug = Dexie.debug
  beforeAll(() => void (Dexie.debug = false))
  afterAll(() => void (Dexie.debug = debug))

  it(`runs every program the same with and without Changecast (${seeds(fallbackSeeds).length} seeds)`, async () => {
    const all = seeds(fallbackSeeds)
    const raced: number[] = []
    for (const seed of all) {
      const failure = await runSeed(seed)
      if (failure === RACED) raced.push(seed)
      else if (failure) expect.fail(report(failure))
    }
    // Rare with plain Dexie; a capture that made transactions commit early would make it common.
    if (raced.length > 0)
      console.info(`${raced.length} of ${all.length} programs stopped at a premature commit: seeds ${raced.join(', ')}`)
    expect(raced.length).toBeLessThanOrEqual(Math.max(1, all.length * 0.02))
  }, 600_000)

  it("catches a middleware that fills Dexie's transaction cache, as Changecast once did", async () => {
    // The removed shortcut: update()'s key lookup answered by a value read through Dexie's
    // existing-values cache, which fills `_cache` (keyed by primary key only) for the next
    // cached read of any table of the transaction.
    const fillsCache = (db: FuzzDb) =>
      db.use({
        stack: 'dbcore',
        name: 'fills-dexie-cache',
        level: 1.4,
        create: (down) => ({
          ...down,
          table: (name) => {
            const table = down.table(name)
            const { primaryKey } = table.schema
            return {
              ...table,
              query: (req: DBCoreQueryRequest) => {
                const { index, range } = req.query
                if (req.values || !index.isPrimaryKey || primaryKey.outbound || (range.type as number) !== 1) {
                  return table.query(req)
                }
                if ((req.trans as unknown as IDBTransaction).mode !== 'readwrite') return table.query(req)
                return table
                  .getMany({ trans: req.trans, keys: [range.lower], cache: 'immutable' })
                  .then(([value]) => ({ result: value === undefined ? [] : [primaryKey.extractKey!(value)] }))
              },
            }
          },
        }),
      })
    let caught: Failure | undefined
    let tried = 0
    for (let seed = 1; seed <= 300 && !caught; seed++, tried++) {
      const failure = await runSeed(seed, { captureOnly: fillsCache, shrink: false })
      if (failure !== RACED) caught = failure
    }
    expect(caught, `no seed of ${tried} caught it`).toBeDefined()
    expect(caught!.program).toMatch(/update|modify/)
    console.info(
      `the fuzz caught Dexie's cache filled by a middleware at seed ${caught!.seed}: ${caught!.problem.split('\n')[0]}`,
    )
  }, 600_000)
}
