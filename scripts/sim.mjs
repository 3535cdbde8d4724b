// pnpm test:sim: the deterministic simulation of clients and server (packages/core/test/sim)
// at volume, one process per core. SIM_SEEDS: a count ("10000", the default), a range
// ("20-80") or a list ("3,17"); SIM_SCENARIO: convergence, scopes, merge, or a list (all three by default);
// SIM_SEED (one seed) with SIM_STEPS replays a shrunk failure (its report prints the
// command); SIM_TRACE=file writes that run's whole trace.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'

const seeds = process.env.SIM_SEEDS ?? '10000'
const shards = process.env.SIM_SEED ? 1 : Number(process.env.SIM_PROCESSES ?? availableParallelism())
const dir = mkdtempSync(join(tmpdir(), 'changecast-sim-'))
const started = Date.now()
console.log(
  `[sim] seeds ${process.env.SIM_SEED ?? seeds}, ${process.env.SIM_SCENARIO ?? 'convergence,scopes,merge'}, ${shards} processes`,
)
const results = await Promise.all(
  Array.from({ length: shards }, (_, shard) => {
    const out = join(dir, `${shard}.json`)
    const child = spawn('npx', ['vitest', 'run', '--project', 'sim'], {
      stdio: 'inherit',
      env: { ...process.env, SIM_SEEDS: seeds, SIM_SHARD: `${shard}/${shards}`, SIM_OUT: out },
    })
    return new Promise((resolve) =>
      child.on('exit', (code) => {
        let result
        try {
          result = JSON.parse(readFileSync(out, 'utf8'))
        } catch {
          result = undefined
        }
        resolve({ code, result })
      }),
    )
  }),
)
const counts = {}
const failures = []
for (const { result } of results) {
  for (const [scenario, count] of Object.entries(result?.counts ?? {}))
    counts[scenario] = (counts[scenario] ?? 0) + count
  failures.push(...(result?.failures ?? []))
}
const seconds = ((Date.now() - started) / 1000).toFixed(0)
console.log(
  `[sim] ${Object.entries(counts)
    .map(([s, n]) => `${s}: ${n} seeds`)
    .join(', ')}; ${failures.length} failing; ${seconds} s`,
)
for (const failure of failures)
  console.log(`[sim] FAILED ${failure.scenario} seed ${failure.seed}: ${failure.failure.split('\n')[0]}`)
process.exit(results.every(({ code }) => code === 0) ? 0 : 1)
