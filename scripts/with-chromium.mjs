// Runs a command with CHROMIUM_PATH pointing at a usable Chromium.
// Usage: node scripts/with-chromium.mjs <command> [...args]
import { spawnSync } from 'node:child_process'
import { ensureChromium } from './chromium.mjs'

const [command, ...args] = process.argv.slice(2)
if (!command) {
  console.error('usage: node scripts/with-chromium.mjs <command> [...args]')
  process.exit(2)
}
const chromium = ensureChromium()
const result = spawnSync(command, args, {
  stdio: 'inherit',
  env: { ...process.env, CHROMIUM_PATH: chromium },
})
process.exit(result.status ?? 1)
