// The deterministic simulation in CI: a fixed set of seeds of each scenario, and the proof
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
  for (const scenario of ['convergence', 'scopes', 'merge'] as const) {
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

describe('shrinking', () => {
  it('removes every step the failure does not need', async () => {
    const planned = Array.from({ length: 70 }, (_, i) => i)
    const base = {
      scenario: 'convergence' as const,
      seed: 1,
      planned: 70,
      hash: '',
      ms: 0,
      tasks: 0,
      steps: [],
      tail: [],
    }
    // A failure that needs steps 5, 9 and 41 together.
    const run = (kept: number[]) =>
      Promise.resolve({ ...base, kept, failure: [5, 9, 41].every((step) => kept.includes(step)) ? 'x' : undefined })
    const shrunk = await shrink(await run(planned), 200, run)
    expect(shrunk.kept).toEqual([5, 9, 41])
    expect(report(shrunk)).toContain('SIM_SEED=1 SIM_STEPS=5,9,41')
  })
})

// Each defect the simulation found, replayed as it was found (seed, and the steps its
// shrunk run kept): each failed before its fix.
describe('defects the simulation found', () => {
  const replay = async (scenario: ScenarioName, seed: number, steps?: number[]) => {
    const outcome = await simulate(scenario, seed, steps)
    expect(outcome.failure, outcome.failure && report(outcome)).toBeUndefined()
  }
  it('scopes seed 1438: scopes A → B → A before a snapshot loaded kept what was written under B; a hello made before an ack arrived was taken for a log that went back', () =>
    replay('scopes', 1438, [0, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 19, 20, 28, 29, 30, 31]))
  it('scopes seed 1034 (the same defects)', () => replay('scopes', 1034))
  it('convergence seed 54: a confirmation answered after a newer batch was applied wrote its older current value over it', () =>
    replay('convergence', 54, [0, 1, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 16]))
  it('merge seed 2952: a commit refused (gone) with its reply lost, then accepted after later commits, was answered by the older acks of those (the newest local commit decided, not the newest server revision)', () =>
    replay(
      'merge',
      2952,
      [
        1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 31, 32,
        33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60,
        61, 62, 63, 64, 65, 66, 69,
      ],
    ))
})

// CI's fixed share; SIM_CI_SEEDS changes it.
const seeds = simSeeds(process.env.SIM_CI_SEEDS ?? '150')
for (const scenario of ['convergence', 'scopes', 'merge'] as const) {
  describe(`${scenario}: every property holds (simulated, seeds ${seeds[0]}–${seeds.at(-1)})`, () => {
    for (const seed of seeds) it(`seed ${seed}`, () => run(scenario, seed).then(() => undefined), 120_000)
  })
}
