// pnpm test:fuzz: the request fuzzer (packages/server/test/fuzz.test.ts) at volume — 10,000
// requests per server from a new seed (FUZZ_REQUESTS and FUZZ_SEED override both). A failure
// prints its seed; `FUZZ_SEED=<seed> pnpm test:fuzz` replays it.
import { spawnSync } from 'node:child_process'

const seed = process.env.FUZZ_SEED ?? String(Math.floor(Math.random() * 2 ** 31))
const requests = process.env.FUZZ_REQUESTS ?? '10000'
console.log(`[fuzz] ${requests} requests per server from seed ${seed}`)
const result = spawnSync('npx', ['vitest', 'run', '--project', 'unit', 'packages/server/test/fuzz.test.ts'], {
  stdio: 'inherit',
  env: { ...process.env, FUZZ_SEED: seed, FUZZ_REQUESTS: requests },
})
if (result.status !== 0)
  console.error(`[fuzz] failed; replay with FUZZ_SEED=${seed} FUZZ_REQUESTS=${requests} pnpm test:fuzz`)
process.exit(result.status ?? 1)
