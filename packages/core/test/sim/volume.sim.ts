// `pnpm test:sim`: the simulation at volume. scripts/sim.mjs starts one of these per core,
// each with its share of the seeds (SIM_SHARD=i/n); every failing seed is shrunk and
// reported with the command that replays it. The results go to SIM_OUT (JSON) for the
// summary.
import { writeFileSync } from 'node:fs'
import { expect, it } from 'vitest'
import { report, shrink, simulate, type Outcome, type ScenarioName } from './scenarios.js'
import { simSeeds } from './seeds.js'

const scenarios = (process.env.SIM_SCENARIO ?? 'convergence,scopes,merge').split(',') as ScenarioName[]
const [shard, shards] = (process.env.SIM_SHARD ?? '0/1').split('/').map(Number) as [number, number]
const steps = process.env.SIM_STEPS ? process.env.SIM_STEPS.split(',').map(Number) : undefined

it(
  'every seed of the share converges, with every property holding',
  async () => {
    const seeds = (
      process.env.SIM_SEED ? [Number(process.env.SIM_SEED)] : simSeeds(process.env.SIM_SEEDS ?? '10000')
    ).filter((_, i) => i % shards === shard)
    const failures: Outcome[] = []
    const counts: Record<string, number> = {}
    const started = performance.now()
    for (const scenario of scenarios) {
      for (const seed of seeds) {
        const outcome = await simulate(scenario, seed, steps)
        counts[scenario] = (counts[scenario] ?? 0) + 1
        if (counts[scenario] % 500 === 0)
          console.log(`[sim ${shard + 1}/${shards}] ${scenario}: ${counts[scenario]} of ${seeds.length} seeds run`)
        if (!outcome.failure) continue
        const shrunk = steps ? outcome : await shrink(outcome)
        failures.push(shrunk)
        console.log(report(shrunk))
      }
    }
    if (process.env.SIM_OUT)
      writeFileSync(
        process.env.SIM_OUT,
        JSON.stringify({
          counts,
          ms: performance.now() - started,
          failures: failures.map(({ scenario, seed, kept, planned, failure }) => ({
            scenario,
            seed,
            kept,
            planned,
            failure,
          })),
        }),
      )
    expect(failures.map(({ scenario, seed }) => `${scenario} ${seed}`)).toEqual([])
  },
  24 * 3600_000,
)
