// The one command that runs every test: unit (Node), browser (vitest + Chromium), e2e
// (Playwright), and the packed packages against their READMEs in a scratch app.
import { spawnSync } from 'node:child_process'
import { ensureChromium } from './chromium.mjs'
import { ensureNginx } from './nginx.mjs'

const env = { ...process.env, CHROMIUM_PATH: ensureChromium() }
// The caching proxy of the cacheable-pages tests, installed before they run (as root on Debian).
try {
  ensureNginx()
} catch (error) {
  console.warn(`[changecast] ${error.message} (the caching proxy tests will fail for that reason)`)
}
const steps = [
  ['unit + browser (vitest)', 'vitest', ['run', '--project', 'unit', '--project', 'svelte', '--project', 'browser']],
  ['end to end (playwright)', 'playwright', ['test']],
  ['packed packages and README examples', process.execPath, ['scripts/check-packages.mjs']],
]
for (const [name, command, args] of steps) {
  console.log(`\n[changecast] ${name}: ${command} ${args.join(' ')}`)
  const result = spawnSync(command, args, { stdio: 'inherit', env })
  if (result.status !== 0) {
    console.error(`[changecast] ${name} failed (exit ${result.status ?? result.signal}).`)
    process.exit(result.status ?? 1)
  }
}
