// The deterministic simulation in CI: a fixed set of seeds of both scenarios, and the proof
// that a seed replays exactly. `pnpm test:sim` runs the same at volume (10,000 seeds per
// scenario by default); a failure there prints the command that replays it here.
import { describe, expect, it } from 'vitest'
import { report, shrink, simulate, type ScenarioName } from './scenarios.js'
import { simSeeds } from './seeds.js'

const run = async (scenario: ScenarioName, seed: number) => {
  const outcome = await simulate(scenario, seed)
  if (outcome.failure) throw new Error(report(await shrink(outcome)))
  return outcome
}

describe('the simulation replays a seed exactly', () => {
  for (const scenario of ['convergence', 'scopes'] as const) {
    it(`${scenario}: the same seed gives the same trace twice; another seed another`, async () => {
      const first = await run(scenario, 11)
      const again = await run(scenario, 11)
      const other = await run(scenario, 12)
      expect(again.hash).toBe(first.hash)
      expect(again.tasks).toBe(first.tasks)
      expect(again.ms).toBe(first.ms)
      expect(other.hash).not.toBe(first.hash)
      // The run did something: requests, replies and tab messages went by.
      expect(first.tasks).toBeGreaterThan(1000)
    })
  }

  it('a run with steps removed replays exactly too (what a shrunk failure reports)', async () => {
    const keep = [0, 1, 2, 5, 8, 13, 21, 34]
    const first = await simulate('convergence', 5, keep)
    const again = await simulate('convergence', 5, keep)
    expect(first.failure).toBeUndefined()
    expect(first.kept).toEqual(keep)
    expect(again.hash).toBe(first.hash)
    expect(first.hash).not.toBe((await simulate('convergence', 5)).hash)
  })
})

// CI's fixed share; SIM_CI_SEEDS changes it.
const seeds = simSeeds(process.env.SIM_CI_SEEDS ?? '100')
for (const scenario of ['convergence', 'scopes'] as const) {
  describe(`${scenario}: every property holds (simulated, seeds ${seeds[0]}–${seeds.at(-1)})`, () => {
    for (const seed of seeds) it(`seed ${seed}`, () => run(scenario, seed).then(() => undefined), 120_000)
  })
}
