// pnpm bench:profile <case> [variant]: a CPU profile (Chrome DevTools protocol, through
// Playwright) of one benchmark case in headless Chromium, as self time per source file and
// per native function. Shows where a case's time goes: `(idle)` is waiting for IndexedDB,
// native functions (`add`, `get`, `put`…) are what issuing requests costs on the main thread.
import { chromium } from 'playwright-core'
import { createServer } from 'vite'
import { chromiumArgs, ensureChromium } from '../scripts/chromium.mjs'

const [name, variant = 'changecast', roundsArg = '6'] = process.argv.slice(2)
if (!name) {
  console.error(
    'usage: pnpm bench:profile <case> [variant] [rounds]   e.g. pnpm bench:profile put-1k-single changecast',
  )
  process.exit(2)
}
const rounds = Number(roundsArg)
const server = await createServer({
  configFile: 'bench/page/vite.config.ts',
  server: { port: 0, hmr: false, watch: null },
})
await server.listen()
const browser = await chromium.launch({ executablePath: ensureChromium(), args: chromiumArgs })
try {
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(server.resolvedUrls.local[0])
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' })
  await page.evaluate(([n, v]) => window.bench.prepare(n, v, 1), [name, variant])
  // Two warm-up rounds, then the profiled ones.
  for (let r = 0; r < 2; r++) await page.evaluate(([n, v, r]) => window.bench.measure(n, v, r, 1), [name, variant, r])
  const cdp = await context.newCDPSession(page)
  await cdp.send('Profiler.enable')
  await cdp.send('Profiler.setSamplingInterval', { interval: 100 })
  await cdp.send('Profiler.start')
  let measured = 0
  for (let r = 2; r < 2 + rounds; r++) {
    measured += await page.evaluate(([n, v, r]) => window.bench.measure(n, v, r, 1), [name, variant, r])
  }
  const { profile } = await cdp.send('Profiler.stop')
  await page.evaluate(() => window.bench.finish())
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map()
  profile.samples.forEach((id, i) => {
    const { functionName, url } = nodes.get(id).callFrame
    const file = url.replace(/^.*?\/(node_modules\/\.vite\/deps|packages)\//, '$1/').replace(/\?.*/, '')
    const key = file || functionName || '(anonymous)'
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0))
  })
  console.log(
    `${name} / ${variant}: ${rounds} rounds, ${(measured / rounds).toFixed(1)} ms each (setup included below)`,
  )
  for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    console.log(`${(us / 1000).toFixed(0).padStart(8)} ms  ${key}`)
  }
} finally {
  await browser.close()
  await server.close()
}
