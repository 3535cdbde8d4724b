// pnpm bench:server [--quick] [--only first-sync|scoped-pull|idle-streams|noisy|startup]: the sync server under load, as real processes on this host
// (the built CLI; the load generator is this process). Writes bench/server-results.json and
// the server section of BENCHMARKS.md.
//
// - throughput: 50 concurrent clients, each pushing one batch of 10 changes at a time, on
//   PostgreSQL (a throwaway cluster) and on PGlite (a data directory);
// - fan-out: 1,000 open streams over 2 instances on one PostgreSQL; a client pushes one
//   batch at a time to either instance; latency from its push acknowledged to each stream
//   receiving the batch;
// - idle cost: resident memory per open stream, and CPU of an instance holding its streams
//   with nothing happening;
// - idle streams: resident memory per stream with 2,000 streams on one instance;
// - noisy neighbour: one user floods pulls (8 at once, each asking for everything) and
//   streams while another user's push + pull latency is measured, against the same with
//   nothing else going on (PGlite and PostgreSQL);
// - start-up: the CLI on an existing PGlite data directory of about 100 MB, after a clean
//   stop and after kill -9: time to listening and to the first answered pull.
import { spawn, spawnSync } from 'node:child_process'
import http from 'node:http'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildPackages } from '../scripts/build-packages.mjs'
import { startPostgres } from '../scripts/postgres.mjs'
import { pushBatch, seedRow, seedRows, signToken, startSyncServer } from '../scripts/sync-server-process.mjs'
import { chromium } from 'playwright-core'
import { createServer } from 'vite'
import {
  cachedCatchUps,
  cpu,
  cpuPerWrite,
  denseStreams,
  fanoutAt,
  percentile,
  replicaReads,
  rss,
  writeCeiling,
} from './scale.mjs'
import { chromiumArgs, ensureChromium } from '../scripts/chromium.mjs'

const quick = process.argv.includes('--quick')
/** `--only first-sync` or `--only scoped-pull`: measure one alone (prints it; writes nothing). */
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined
const root = fileURLToPath(new URL('..', import.meta.url))
const CLIENTS = 50
const CHANGES = 10
const SECONDS = quick ? 4 : 10
const STREAMS = quick ? 200 : 1000
const FANOUT_PUSHES = quick ? 30 : 100
const IDLE_SECONDS = quick ? 5 : 15

const log = (...args) => console.log('[bench:server]', ...args)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Starts the CLI without authentication; resolves with its URL and pid once it listens. */
const startServer = (args) => startSyncServer(['--insecure-no-auth', ...args])

const push = async (url, clientId, rev, changes) => {
  const response = await fetch(`${url}/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ v: 2, clientId, batches: [{ rev, tx: `${clientId}.${rev}`, at: Date.now(), changes }] }),
  })
  if (response.status !== 200) throw new Error(`push answered ${response.status}: ${await response.text()}`)
  const reply = await response.json()
  if (reply.acked.length !== 1) throw new Error(`push not acked: ${JSON.stringify(reply)}`)
}

/**
 * 50 clients push batches of 10 changes (to 1,000 entities each, so updates too) for
 * `seconds`; `changesOf(client, rev)` may make other changes.
 */
async function throughput(url, label, changesOf = undefined) {
  const urls = [url].flat()
  const run = Date.now().toString(36)
  changesOf ??= (client, rev) =>
    Array.from({ length: CHANGES }, (_, i) => {
      const key = `${client}-${(rev * CHANGES + i) % 1000}`
      return { type: 'update', table: 'items', key, value: { id: key, n: rev, text: 'lorem ipsum '.repeat(8) } }
    })
  const drive = async (seconds) => {
    let accepted = 0
    const end = Date.now() + seconds * 1000
    const latencies = []
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, client) => {
        const clientId = `load-${run}-${seconds}-${client}`
        for (let rev = 1; Date.now() < end; rev++) {
          const started = performance.now()
          await push(urls[client % urls.length], clientId, rev, changesOf(client, rev))
          latencies.push(performance.now() - started)
          accepted += CHANGES
        }
      }),
    )
    return { perSecond: accepted / seconds, latencies }
  }
  await drive(2) // warm-up
  const { perSecond, latencies } = await drive(SECONDS)
  const result = {
    perSecond: Math.round(perSecond),
    pushP50: percentile(latencies, 50),
    pushP99: percentile(latencies, 99),
  }
  log(`${label}: ${result.perSecond} changes/s (push p50 ${result.pushP50} ms, p99 ${result.pushP99} ms)`)
  return result
}

/**
 * Merged updates against whole values, same load: 50 clients update 200 entities each that
 * exist (seeded first), in batches of 10. `replace` sends each update's whole value (the last
 * accepted wins); `merge` sends it as a patch of one field plus a Dexie `add(1)` on another,
 * which the server applies to its own value inside the push transaction. Alternated twice
 * (replace, merge, replace, merge) so that a drift of the machine hits both; the best of each.
 */
async function mergeVsReplace(url, label) {
  const run = Date.now().toString(36)
  const KEYS = 200
  const keyOf = (client, n) => `m-${run}-${client}-${n % KEYS}`
  const valueOf = (key, rev) => ({ id: key, n: rev, count: rev, text: 'lorem ipsum '.repeat(8) })
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      for (let part = 0; part < KEYS / 100; part++) {
        const changes = Array.from({ length: 100 }, (_, i) => {
          const key = keyOf(client, part * 100 + i)
          return { type: 'create', table: 'items', key, value: valueOf(key, 0) }
        })
        await push(url, `seed-${run}-${client}`, part + 1, changes)
      }
    }),
  )
  const updates = (merge) => (client, rev) =>
    Array.from({ length: CHANGES }, (_, i) => {
      const key = keyOf(client, rev * CHANGES + i)
      const change = { type: 'update', table: 'items', key, value: valueOf(key, rev), changes: { n: rev, count: rev } }
      return merge ? { ...change, patch: ['n'], ops: { count: { add: 1 } } } : change
    })
  const replace = []
  const merge = []
  for (let round = 1; round <= 2; round++) {
    replace.push(await throughput(url, `${label}, whole values (round ${round})`, updates(false)))
    merge.push(await throughput(url, `${label}, merged (round ${round})`, updates(true)))
  }
  const best = (results) => results.reduce((a, b) => (b.perSecond > a.perSecond ? b : a))
  const result = { replace: best(replace), merge: best(merge) }
  result.cost = Math.round((1 - result.merge.perSecond / result.replace.perSecond) * 1000) / 10
  log(
    `${label}: merged ${result.merge.perSecond} vs whole values ${result.replace.perSecond} changes/s: cost ${result.cost} %`,
  )
  return result
}

/**
 * Opens `count` streams spread over `urls`; each records when it receives each fan-out
 * batch. Read with node:http (cheaper per chunk than fetch), so that the load generator's
 * own work adds as little as possible to the latencies it measures.
 */
async function openStreams(urls, count, arrivals, since) {
  const head = since ?? (await (await fetch(urls[0])).json()).head
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity })
  const requests = []
  let ready = 0
  for (let i = 0; i < count; i++) {
    const url = new URL(`${urls[i % urls.length]}/stream?v=2&since=${head}&clientId=stream-${i}`)
    const request = http.get(url, { agent }, (response) => {
      let first = true
      response.setEncoding('latin1')
      response.on('data', (data) => {
        const at = performance.now()
        if (first && data.includes('event: hello')) {
          first = false
          ready++
        }
        for (let from = data.indexOf('"tx":"fanout.'); from >= 0; from = data.indexOf('"tx":"fanout.', from + 1)) {
          arrivals[Number.parseInt(data.slice(from + 13, from + 24), 10)].push(at)
        }
      })
    })
    request.on('error', () => undefined)
    requests.push(request)
  }
  while (ready < count) await sleep(50)
  return () => {
    for (const request of requests) request.destroy()
    agent.destroy()
  }
}

async function fanout(urls, pids) {
  const before = pids.map(rss)
  const arrivals = Array.from({ length: FANOUT_PUSHES + 1 }, () => [])
  const close = await openStreams(urls, STREAMS, arrivals)
  await sleep(3000)
  const after = pids.map(rss)
  const perStream = (after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0)) / STREAMS
  log(`memory per idle stream: ${(perStream / 1024).toFixed(1)} KB`)

  const cpuBefore = pids.map(cpu)
  await sleep(IDLE_SECONDS * 1000)
  const idleCpu = pids.map((pid, i) => (cpu(pid) - cpuBefore[i]) / (IDLE_SECONDS * 1000))
  log(
    `idle CPU with ${STREAMS / pids.length} streams each: ${idleCpu.map((share) => `${(share * 100).toFixed(2)} %`).join(', ')}`,
  )

  const acked = []
  for (let n = 1; n <= FANOUT_PUSHES; n++) {
    const url = urls[n % urls.length]
    const changes = [{ type: 'update', table: 'items', key: 'fan', value: { id: 'fan', n } }]
    const response = await fetch(`${url}/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        v: 2,
        clientId: 'fanout',
        batches: [{ rev: n, tx: `fanout.${n}`, at: Date.now(), changes }],
      }),
    })
    await response.json()
    acked[n] = performance.now()
    await sleep(100)
  }
  await sleep(1000)
  close()
  const latencies = []
  let missing = 0
  for (let n = 1; n <= FANOUT_PUSHES; n++) {
    missing += STREAMS - arrivals[n].length
    for (const at of arrivals[n]) latencies.push(Math.max(0, at - acked[n]))
  }
  const result = {
    streams: STREAMS,
    instances: urls.length,
    pushes: FANOUT_PUSHES,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    missing,
    memoryPerStreamKB: Math.round(perStream / 102.4) / 10,
    idleCpuPercent: idleCpu.map((share) => Math.round(share * 10000) / 100),
  }
  log(`fan-out: p50 ${result.p50} ms, p99 ${result.p99} ms over ${latencies.length} deliveries, ${missing} missing`)
  return result
}

const FIRST_SYNC_ROWS = quick ? 20_000 : 100_000
const FIRST_SYNC_ROUNDS = quick ? 1 : 5

/**
 * First sync: a new client in Chromium loads FIRST_SYNC_ROWS rows (~200 bytes each) from a
 * snapshot of the CLI on PGlite into IndexedDB (the e2e harness page), while this process
 * samples the server's resident memory.
 */
async function firstSync() {
  const dataDir = mkdtempSync(join(os.tmpdir(), 'changecast-bench-first-'))
  const server = await startServer(['--data', dataDir, '--cors-origin', '*'])
  const vite = await createServer({
    configFile: join(root, 'e2e/harness/vite.config.ts'),
    server: { port: 0, hmr: false, watch: null },
    logLevel: 'warn',
  })
  const browser = await chromium.launch({ executablePath: ensureChromium(), args: chromiumArgs })
  try {
    await seedRows(server.url, { count: FIRST_SYNC_ROWS })
    await vite.listen()
    const page = await browser.newPage()
    await page.goto(vite.resolvedUrls.local[0])
    await page.waitForFunction(() => window.harness)
    const before = rss(server.pid)
    let peak = before
    const sampler = setInterval(() => (peak = Math.max(peak, rss(server.pid))), 50)
    // Each round is a new client (a new database): the median is reported, with every round.
    const rounds = []
    let result
    for (let round = 0; round < FIRST_SYNC_ROUNDS; round++) {
      const name = `first-sync-${Date.now()}`
      result = await page.evaluate(
        ([url, name]) => window.harness.firstSync({ url, name, local: 0, localFrom: 1e9 }),
        [server.url, name],
      )
      if (result.count !== FIRST_SYNC_ROWS) throw new Error(`first sync loaded ${result.count} rows`)
      rounds.push(result.ms)
      await page.evaluate(
        (name) =>
          new Promise((resolve, reject) => {
            const request = indexedDB.deleteDatabase(name)
            request.onsuccess = resolve
            request.onerror = () => reject(request.error)
          }),
        name,
      )
    }
    clearInterval(sampler)
    const out = {
      rows: FIRST_SYNC_ROWS,
      ms: percentile(rounds, 50),
      rounds,
      pages: result.progress.length,
      serverRssBeforeMB: Math.round(before / 2 ** 20),
      serverRssGrowthMB: Math.round((peak - before) / 2 ** 20),
    }
    log(
      `first sync of ${out.rows} rows: ${out.ms} ms (median of ${rounds.join(', ')}) in ${out.pages} pages; server memory +${out.serverRssGrowthMB} MB`,
    )
    return out
  } finally {
    await browser.close()
    await vite.close()
    await server.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

/**
 * Scoped pull: 100,000 rows in 1,000 scopes on PostgreSQL; a pull by a client reading one
 * of them (100 rows), against the same pull from a server that holds only those 100 rows, in
 * one scope. Shows the plan of the scoped read.
 */
async function scopedPull(postgresUrl) {
  const { createSyncHandler, openPostgres } = await import('../packages/server/dist/index.js')
  const measure = async (schema, scoped) => {
    const database = await openPostgres(postgresUrl)
    const handler = createSyncHandler({
      database,
      schema,
      authenticate: () => ({ id: 'reader' }),
      scopeOf: scoped ? ({ value }) => value.project : undefined,
      scopes: scoped ? () => ({ read: ['project:7'] }) : undefined,
    })
    await handler.ready
    for (let first = 1; first <= 100_000; first += 2000) {
      const changes = []
      for (let id = first; id < first + 2000; id++) {
        // The one-scope server holds only what the scoped client reads: the same rows, in the same batches.
        if (scoped || id % 1000 === 7) changes.push({ type: 'create', table: 'rows', key: id, value: seedRow(id) })
      }
      await handler.write(changes)
    }
    await database.query(`analyze "${schema}".changecast_changes`)
    const times = []
    // Many pulls from positions across the log (a few ms each: one slow one must not decide it).
    for (let i = 0; i < 300; i++) {
      const started = performance.now()
      const response = await handler(
        new Request(`http://bench/pull?v=2&since=${i % 50}&limit=50&clientId=reader-${schema}`),
      )
      await response.text()
      times.push(performance.now() - started)
    }
    const plan = scoped
      ? (
          await database.query(
            // The read of the log (store/log.ts, readAfter), for one scope.
            `explain select rev, seq, scope, tbl, key, change, removed from "${schema}".changecast_changes
             where (rev, seq) > ($1, $2) and rev >= $1 and rev <= $3 and scope = any($5::text[]) order by rev, seq limit $4`,
            [0, 2 ** 31 - 1, 100_000, 250, ['project:7']],
          )
        ).map((row) => row['QUERY PLAN'])
      : []
    await handler.close()
    await database.close()
    return { ms: Math.round(percentile(times, 50) * 10) / 10, plan }
  }
  const one = await measure('bench_one_scope', false)
  const many = await measure('bench_many_scopes', true)
  log(`pull, 1 of 1,000 scopes: ${many.ms} ms; every row in one scope: ${one.ms} ms`)
  for (const line of many.plan) log(`  ${line}`)
  return { oneScopeMs: one.ms, oneOfThousandMs: many.ms, plan: many.plan }
}

const IDLE_STREAMS = quick ? 500 : 2000
const NOISY_ROWS = quick ? 10_000 : 50_000
const NOISY_ROUNDS = quick ? 60 : 200
const STARTUP_ROWS = quick ? 10_000 : 50_000

/**
 * The floor of an idle stream's memory: Node's own HTTP server holding Server-Sent Events
 * responses that write nothing (what any stream on Node costs), as a process started the
 * way the CLI is. Resolves with its URL, pid and a stop function.
 */
function startFloorServer() {
  const code = `
    const server = require('node:http').createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      res.write('event: hello\\ndata: {}\\n\\n')
    })
    server.listen(0, '127.0.0.1', () => console.log('listening on http://127.0.0.1:' + server.address().port + ' '))
  `
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve) => {
    child.stdout.on('data', (chunk) => {
      const url = String(chunk).match(/listening on (\S+)/)?.[1]
      if (url) resolve({ url, pid: child.pid, stop: () => child.kill() })
    })
  })
}

/**
 * Resident memory per idle stream with IDLE_STREAMS streams on one instance (PostgreSQL),
 * KB, beside the floor (Node's HTTP server holding as many idle event streams) in the same run.
 */
async function idleStreams(postgresUrl) {
  const perStream = async (server) => {
    // Warm up: the first streams allocate what every later one shares.
    const warm = await openStreams([server.url], 50, [], 0)
    warm()
    await sleep(1000)
    const before = rss(server.pid)
    const close = await openStreams([server.url], IDLE_STREAMS, [], 0)
    await sleep(3000)
    const bytes = (rss(server.pid) - before) / IDLE_STREAMS
    close()
    return Math.round(bytes / 102.4) / 10
  }
  const floor = await startFloorServer()
  const floorKB = await perStream(floor).finally(() => floor.stop())
  const server = await startServer(['--database-url', postgresUrl, '--streams-per-user', '100000'])
  try {
    const result = { streams: IDLE_STREAMS, rssPerStreamKB: await perStream(server), floorKB }
    log(
      `idle streams: ${result.rssPerStreamKB} KB of RSS each with ${IDLE_STREAMS} streams on one instance; ` +
        `Node's HTTP server alone: ${floorKB} KB`,
    )
    return result
  } finally {
    await server.stop()
  }
}

/**
 * One user ("noisy") floods the server — 8 pulls at once, each asking for every batch
 * (~8 MiB pages), again as soon as answered, 429s ignored, and 2,000 streams — while
 * another ("quiet") pushes one change and pulls, round after round. The quiet user's round
 * trip, p50 and p99, with and without the flood.
 */
async function noisyNeighbour(label, args) {
  const secret = 'bench-secret'
  const server = await startSyncServer(['--jwt-secret', secret, ...args])
  const noisy = { authorization: `Bearer ${signToken(secret, 'noisy')}` }
  const quiet = { authorization: `Bearer ${signToken(secret, 'quiet')}` }
  try {
    await seedRows(server.url, { count: NOISY_ROWS, headers: noisy, clientId: `noisy-seed-${Date.now()}` })
    const quietClient = `quiet-${Date.now()}`
    let rev = 0
    let position = (await (await fetch(server.url)).json()).head
    const round = async () => {
      const start = performance.now()
      await pushBatch(
        server.url,
        quietClient,
        ++rev,
        [{ type: 'update', table: 'notes', key: 1, value: { n: rev } }],
        quiet,
      )
      const response = await fetch(`${server.url}/pull?v=2&since=${position}&limit=50&clientId=${quietClient}`, {
        headers: quiet,
      })
      if (response.status !== 200) throw new Error(`quiet pull answered ${response.status}`)
      position = (await response.json()).upTo
      return performance.now() - start
    }
    const measure = async () => {
      const latencies = []
      for (let i = 0; i < NOISY_ROUNDS; i++) latencies.push(await round())
      return { p50: percentile(latencies, 50), p99: percentile(latencies, 99) }
    }
    await measure() // warm-up
    const calm = await measure()
    // The flood runs in a process of its own, as another user's machine would.
    const flood = spawn(process.execPath, [join(root, 'bench/noisy-user.mjs'), server.url, noisy.authorization], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let report = ''
    flood.stdout.on('data', (chunk) => (report += chunk))
    await sleep(3000)
    const noisyResult = await measure()
    flood.kill('SIGTERM')
    await new Promise((resolve) => flood.once('exit', resolve))
    const counts = JSON.parse(report.trim().split('\n').at(-1))
    const result = {
      rows: NOISY_ROWS,
      rounds: NOISY_ROUNDS,
      quietP50: calm.p50,
      quietP99: calm.p99,
      noisyP50: noisyResult.p50,
      noisyP99: noisyResult.p99,
      ratioP99: Math.round((noisyResult.p99 / calm.p99) * 100) / 100,
      floodPulls: counts.pulls,
      floodPullMB: Math.round((counts.bytes / Math.max(1, counts.pulls) / 2 ** 20) * 10) / 10,
      floodRefused: counts.refused,
      streamsAccepted: counts.streams,
      streamsRefused: counts.streamsRefused,
    }
    log(
      `noisy neighbour, ${label}: quiet user's push+pull p50 ${result.quietP50} ms, p99 ${result.quietP99} ms alone; ` +
        `p50 ${result.noisyP50} ms, p99 ${result.noisyP99} ms beside the flood (×${result.ratioP99}); ` +
        `flood: ${result.floodPulls} pulls of ~${result.floodPullMB} MB answered, ${result.floodRefused} refused (429); ` +
        `streams ${result.streamsAccepted} accepted, ${result.streamsRefused} refused`,
    )
    return result
  } finally {
    await server.stop()
  }
}

/** Size of a directory, bytes. */
function sizeOf(dir) {
  return Number(spawnSync('du', ['-sb', dir], { encoding: 'utf8' }).stdout.split('\t')[0])
}

/**
 * Start-up on an existing PGlite data directory of about 100 MB: after a clean stop, and
 * after kill -9 in the middle of writes. Time to the "listening" line, and to the first
 * answered pull.
 */
async function startup() {
  const dataDir = mkdtempSync(join(os.tmpdir(), 'changecast-bench-startup-'))
  try {
    const first = await startServer(['--data', dataDir])
    await seedRows(first.url, { count: STARTUP_ROWS, batch: 2500, clientId: `startup-${Date.now()}` })
    await first.stop()
    const bytes = sizeOf(dataDir)
    const time = async () => {
      const start = performance.now()
      const server = await startServer(['--data', dataDir])
      const listening = performance.now() - start
      const response = await fetch(`${server.url}/pull?v=2&since=0&limit=1&clientId=startup-reader`)
      if (response.status !== 200) throw new Error(`pull after start answered ${response.status}`)
      await response.arrayBuffer()
      return { server, listening: Math.round(listening), answered: Math.round(performance.now() - start) }
    }
    const clean = []
    for (let i = 0; i < 3; i++) {
      const run = await time()
      clean.push(run)
      await run.server.stop()
    }
    // kill -9 while writing, then start again (PostgreSQL recovers from its WAL).
    const crashed = []
    for (let i = 0; i < 2; i++) {
      const victim = await startServer(['--data', dataDir])
      const writing = seedRows(victim.url, {
        from: 1e7 * (i + 1),
        count: 50_000,
        batch: 500,
        clientId: `crash-${i}`,
      }).catch(() => undefined)
      await sleep(1500)
      process.kill(victim.pid, 'SIGKILL')
      await writing
      await sleep(200)
      const run = await time()
      if (!run.server.output().includes('recovering after an unclean stop'))
        throw new Error('no recovery line after kill -9')
      crashed.push(run)
      await run.server.stop()
    }
    const median = (runs, key) =>
      percentile(
        runs.map((run) => run[key]),
        50,
      )
    const result = {
      rows: STARTUP_ROWS,
      dataMB: Math.round(bytes / 2 ** 20),
      cleanListeningMs: median(clean, 'listening'),
      cleanAnsweredMs: median(clean, 'answered'),
      crashListeningMs: median(crashed, 'listening'),
      crashAnsweredMs: median(crashed, 'answered'),
      runs: {
        clean: clean.map(({ listening, answered }) => ({ listening, answered })),
        crashed: crashed.map(({ listening, answered }) => ({ listening, answered })),
      },
    }
    log(
      `start-up on a ${result.dataMB} MB PGlite directory: listening after ${result.cleanListeningMs} ms, first pull answered after ${result.cleanAnsweredMs} ms; ` +
        `after kill -9: ${result.crashListeningMs} ms, ${result.crashAnsweredMs} ms`,
    )
    return result
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}

function report(results) {
  const pass = (value, target, below = false) => ((below ? value <= target : value >= target) ? '✓' : '✗')
  const { environment, postgres, pglite, merge, fanout: f, first, scoped, idle, noisy, startup: up } = results
  const mergeRow = (label, m) =>
    `| merged updates vs whole values, ${label} (same load on existing entities: a patch of one field + \`add(1)\` on another) | ${m.merge.perSecond} vs ${m.replace.perSecond} changes/s: cost ${m.cost} % | ≤ 15 % ${pass(m.cost, 15, true)} |`
  const noisyRow = (label, n) =>
    `| noisy neighbour, ${label}: another user's push + pull p99 beside one user's flood (8 pulls at once each asking for every batch, 2,000 streams, 429s ignored; ${n.floodPulls} of its pulls answered, ${n.floodRefused} refused) | ${n.noisyP99} ms (p50 ${n.noisyP50} ms; alone p99 ${n.quietP99} ms, p50 ${n.quietP50} ms): ×${n.ratioP99} | ≤ ×2 ${pass(n.ratioP99, 2, true)} |`
  return `<!-- server:start -->
## Sync server (\`pnpm bench:server\`)

Generated on ${results.date}${results.quick ? ' (quick run)' : ''}. ${environment}. The built \`changecast-server\` CLI runs
as separate processes; the load generator shares the machine's cores with them.

| measure | result | target |
| --- | --: | --: |
| accepted changes/s, PostgreSQL (${CLIENTS} clients × batches of ${CHANGES}) | ${postgres.perSecond} (push p50 ${postgres.pushP50} ms, p99 ${postgres.pushP99} ms) | ≥ 5,000 ${pass(postgres.perSecond, 5000)} |
| accepted changes/s, PGlite (${CLIENTS} clients × batches of ${CHANGES}) | ${pglite.perSecond} (push p50 ${pglite.pushP50} ms, p99 ${pglite.pushP99} ms) | ≥ 2,000 ${pass(pglite.perSecond, 2000)} |
${merge ? `${mergeRow('PostgreSQL', merge.postgres)}\n${mergeRow('PGlite', merge.pglite)}` : ''}
| fan-out latency p50, ${f.streams} streams over ${f.instances} instances | ${f.p50} ms | ≤ 20 ms ${pass(f.p50, 20, true)} |
| fan-out latency p99 | ${f.p99} ms | ≤ 100 ms ${pass(f.p99, 100, true)} |
| deliveries missing | ${f.missing} of ${f.streams * f.pushes} | 0 ${pass(f.missing, 0, true)} |
| memory per idle stream | ${f.memoryPerStreamKB} KB | ≤ 50 KB ${pass(f.memoryPerStreamKB, 50, true)} |
| memory per idle stream, ${idle.streams.toLocaleString('en')} streams on one instance (floor: Node's HTTP server holding as many idle event streams, ${idle.floorKB} KB) | ${idle.rssPerStreamKB} KB | ≤ 8 KB ${pass(idle.rssPerStreamKB, 8, true)} |
${noisyRow('PGlite', noisy.pglite)}
${noisyRow('PostgreSQL', noisy.postgres)}
| start-up on an existing ${up.dataMB} MB PGlite directory: listening; first pull answered | ${up.cleanListeningMs} ms; ${up.cleanAnsweredMs} ms | ≤ 3,000 ms ${pass(up.cleanAnsweredMs, 3000, true)} |
| the same after kill -9 (recovery) | ${up.crashListeningMs} ms; ${up.crashAnsweredMs} ms | ≤ 3,000 ms ${pass(up.crashAnsweredMs, 3000, true)} |
| CPU of an idle instance holding ${f.streams / f.instances} streams | ${f.idleCpuPercent.map((p) => `${p} %`).join(', ')} | ≈ 0 |
| first sync of ${first.rows.toLocaleString('en')} rows into IndexedDB (Chromium, PGlite server, ${first.pages} pages; median of ${first.rounds.join(', ')} ms) | ${first.ms} ms | ≤ 10,000 ms ${pass(first.ms, 10_000, true)} |
| server memory growth during that first sync | ${first.serverRssGrowthMB} MB (from ${first.serverRssBeforeMB} MB) | flat |
| pull (50 batches) for a client in 1 of 1,000 scopes, PostgreSQL, 100,000 rows | ${scoped.oneOfThousandMs} ms | ≈ the same rows alone in one scope (${scoped.oneScopeMs} ms) |

${scaleReport(results)}

Plan of the scoped read (index on scope and revision):

\`\`\`
${scoped.plan.join('\n')}
\`\`\`
<!-- server:end -->`
}

const resultsFile = join(root, 'bench/server-results.json')
const today = () => new Date().toISOString().slice(0, 10)

/** Writes bench/server-results.json and the server section of BENCHMARKS.md. */
function writeResults(results) {
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`)
  const file = join(root, 'BENCHMARKS.md')
  const markdown = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n'
  writeFileSync(file, spliceServerSection(markdown, report(results)))
  spawnSync('npx', ['prettier', '--write', file, resultsFile], { cwd: root })
  log('wrote bench/server-results.json and the server section of BENCHMARKS.md')
}

/** The rows of `--only scale` (bench/scale.mjs): past one machine. */
function scaleReport({ scale, scaleDate }) {
  if (!scale) return ''
  const pass = (value, target, below = false) => ((below ? value <= target : value >= target) ? '✓' : '✗')
  const { dense, cpuPerWrite: perWrite, fanout10k: f, cached: c, replica: r, ceiling } = scale
  const ratio = Math.round((perWrite.tenThousandMs / perWrite.thousandMs) * 100) / 100
  return `### Past one machine (\`pnpm bench:server --only scale\`, ${scaleDate})

| measure | result | target |
| --- | --: | --: |
| fan-out latency, ${f.streams.toLocaleString('en')} streams over ${f.instances} instances (p50; p99) | ${f.p50} ms; ${f.p99} ms (${f.missing} of ${(f.streams * f.pushes).toLocaleString('en')} deliveries missing) | p99 ≤ 100 ms ${pass(f.p99, 100, true)} |
| resident memory per idle stream, ${dense.streams.toLocaleString('en')} streams on one instance, after an idle minute (right after they opened) | ${dense.rssPerStreamKB} KB (${dense.rssPerStreamOpenedKB} KB) | ≤ 4 KB ${pass(dense.rssPerStreamKB, 4, true)} |
| CPU of that instance while its streams idle (heartbeats included) | ${dense.idleCpuPercent} % | ≈ 0 |
| CPU per write reaching 10 streams, with 1,000 vs 10,000 streams (the others in 999 other scopes) | ${perWrite.thousandMs} ms vs ${perWrite.tenThousandMs} ms (×${ratio}) | independent ${pass(ratio, 1.2, true)} |
| ${c.clients.toLocaleString('en')} users of one scope catching up from revision 0 at once (${c.revisions.toLocaleString('en')} batches of theirs) through nginx (proxy_cache), cacheable pages of ${c.pageRevisions} revisions: page requests that reached the origin | ${c.cached.originPages} for ${c.pages} pages (${c.cached.pagesServed.toLocaleString('en')} served; plus ${c.cached.pulls.toLocaleString('en')} small redirecting pulls) | ≤ 1 per page ${pass(c.cached.originPages, c.pages, true)} |
| the same catch-ups: through the cache; without pages, straight to the origin | ${c.cached.ms.toLocaleString('en')} ms; ${c.directMs.toLocaleString('en')} ms | |
| streaming replica lag under ${r.writesPerSecond} pushes/s (p50; p99; polled every 5 ms) | ${r.lagP50} ms; ${r.lagP99} ms | |
| pull (50 batches) under that load: from the replica vs from the primary (p50; p99) | ${r.pullReplicaP50}; ${r.pullReplicaP99} ms vs ${r.pullPrimaryP50}; ${r.pullPrimaryP99} ms | |
| write ceiling: accepted changes/s, 50 clients × batches of 10 over 1, 2, 4 instances (group commit) | ${[1, 2, 4].map((n) => ceiling[n].perSecond.toLocaleString('en')).join(', ')} | docs/scaling.md |`
}

/** Replaces the server section of BENCHMARKS.md (or appends it). */
export function spliceServerSection(markdown, section) {
  const start = markdown.indexOf('<!-- server:start -->')
  const end = markdown.indexOf('<!-- server:end -->')
  if (start < 0 || end < 0) return `${markdown.trimEnd()}\n\n${section}\n`
  return `${markdown.slice(0, start)}${section}${markdown.slice(end + '<!-- server:end -->'.length)}`
}

/** Past one machine (bench/scale.mjs): each on its own, in turn. */
async function scaleResults(postgres) {
  // SCALE=dense,cpu,fanout,cached,replica,ceiling: only those (with --only scale).
  const wanted = new Set((process.env.SCALE ?? 'dense,cpu,fanout,cached,replica,ceiling').split(','))
  const run = (name, measure) => (wanted.has(name) ? measure() : undefined)
  return {
    dense: await run('dense', () =>
      denseStreams(postgres.url, { count: quick ? 2000 : 10_000, idleSeconds: quick ? 16 : 32 }),
    ),
    cpuPerWrite: await run('cpu', () => cpuPerWrite(postgres.url, { writes: quick ? 200 : 500 })),
    fanout10k: await run('fanout', () =>
      fanoutAt(postgres.url, { count: quick ? 2000 : 10_000, pushes: quick ? 30 : 100 }),
    ),
    cached: await run('cached', () => cachedCatchUps(postgres.url, { clients: 1000 })),
    replica: await run('replica', () => replicaReads(postgres, { seconds: quick ? 5 : 10 })),
    ceiling: await run('ceiling', () => writeCeiling(postgres.url, throughput)),
  }
}

async function main() {
  buildPackages(['core', 'server'])
  if (only === 'first-sync') {
    await firstSync()
    process.exit(0)
  }
  if (only === 'scoped-pull') {
    const postgres = await startPostgres()
    await scopedPull(postgres.url).finally(() => postgres.stop())
    process.exit(0)
  }
  if (only === 'idle-streams' || only === 'noisy') {
    const postgres = await startPostgres()
    const dataDir = mkdtempSync(join(os.tmpdir(), 'changecast-bench-noisy-'))
    try {
      if (only === 'idle-streams') await idleStreams(postgres.url)
      else {
        await noisyNeighbour('PGlite', ['--data', dataDir])
        await noisyNeighbour('PostgreSQL', ['--database-url', postgres.url])
      }
    } finally {
      postgres.stop()
      rmSync(dataDir, { recursive: true, force: true })
    }
    process.exit(0)
  }
  if (only === 'startup') {
    await startup()
    process.exit(0)
  }
  if (only === 'merge') {
    const postgres = await startPostgres()
    const dataDir = mkdtempSync(join(os.tmpdir(), 'changecast-bench-merge-'))
    try {
      const pg = await startServer(['--database-url', postgres.url])
      await mergeVsReplace(pg.url, 'PostgreSQL')
      await pg.stop()
      const lite = await startServer(['--data', dataDir])
      await mergeVsReplace(lite.url, 'PGlite')
      await lite.stop()
    } finally {
      postgres.stop()
      rmSync(dataDir, { recursive: true, force: true })
    }
    process.exit(0)
  }
  if (process.argv.includes('--report')) {
    // Only the report again, from bench/server-results.json.
    writeResults(JSON.parse(readFileSync(resultsFile, 'utf8')))
    process.exit(0)
  }
  if (only === 'scale') {
    const postgres = await startPostgres()
    try {
      const scale = await scaleResults(postgres)
      log(JSON.stringify(scale, null, 2))
      // A whole scale run: kept beside the last full run's other results, and reported with them.
      if (!process.env.SCALE)
        writeResults({ ...JSON.parse(readFileSync(resultsFile, 'utf8')), scale, scaleDate: today() })
    } finally {
      postgres.stop()
    }
    process.exit(0)
  }
  if (only !== undefined) {
    throw new Error(`--only takes first-sync, scoped-pull, idle-streams, noisy, startup, merge or scale, not ${only}`)
  }
  const cpus = os.cpus()
  const environment = `Node ${process.version}, ${os.type()} ${os.release()} ${os.arch()}, ${cpus.length} × ${cpus[0]?.model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GB`
  // First, while nothing else runs on this host (Postgres' autovacuum after the load phases would compete).
  const firstResult = await firstSync()
  const postgres = await startPostgres()
  const dataDir = mkdtempSync(join(os.tmpdir(), 'changecast-bench-pglite-'))
  const servers = []
  try {
    const pg = await startServer(['--database-url', postgres.url, '--streams-per-user', '100000'])
    servers.push(pg)
    const postgresResult = await throughput(pg.url, 'PostgreSQL')
    const postgresMerge = await mergeVsReplace(pg.url, 'PostgreSQL')
    const lite = await startServer(['--data', dataDir])
    servers.push(lite)
    const pgliteResult = await throughput(lite.url, 'PGlite')
    const pgliteMerge = await mergeVsReplace(lite.url, 'PGlite')
    await lite.stop()
    const second = await startServer(['--database-url', postgres.url, '--streams-per-user', '100000'])
    servers.push(second)
    const fanoutResult = await fanout([pg.url, second.url], [pg.pid, second.pid])
    for (const server of servers) await server.stop().catch(() => undefined)
    servers.length = 0
    const scopedResult = await scopedPull(postgres.url)
    const idleResult = await idleStreams(postgres.url)
    const noisyDir = mkdtempSync(join(os.tmpdir(), 'changecast-bench-noisy-'))
    const noisyPglite = await noisyNeighbour('PGlite', ['--data', noisyDir]).finally(() =>
      rmSync(noisyDir, { recursive: true, force: true }),
    )
    const noisyPostgres = await noisyNeighbour('PostgreSQL', ['--database-url', postgres.url])
    const startupResult = await startup()
    const scale = await scaleResults(postgres)
    const results = {
      date: today(),
      scale,
      scaleDate: today(),
      quick,
      environment,
      postgres: postgresResult,
      pglite: pgliteResult,
      merge: { postgres: postgresMerge, pglite: pgliteMerge },
      fanout: fanoutResult,
      first: firstResult,
      scoped: scopedResult,
      idle: idleResult,
      noisy: { pglite: noisyPglite, postgres: noisyPostgres },
      startup: startupResult,
    }
    writeResults(results)
  } finally {
    for (const server of servers) await server.stop().catch(() => undefined)
    postgres.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
  process.exit(0)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
