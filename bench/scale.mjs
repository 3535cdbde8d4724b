// `pnpm bench:server`, past one machine (`--only scale` runs these alone): dense streams, a
// write waking only its scope, fan-out at 10,000 streams, cached catch-ups behind nginx,
// reads from a streaming replica, and the write ceiling at 1, 2 and 4 instances. Real
// processes on this host: the built CLI, PostgreSQL (a primary and a `pg_basebackup -R`
// replica), nginx; the load generator is this process and its worker threads.
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { startReplica } from '../scripts/postgres.mjs'
import { startCachingProxy } from '../scripts/nginx.mjs'
import { pushBatch, signToken, startSyncServer } from '../scripts/sync-server-process.mjs'
import { holdStreams } from './streams.mjs'

const pg = createRequire(new URL('../packages/server/package.json', import.meta.url))('pg')
const log = (...args) => console.log('[bench:server]', ...args)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const SECRET = 'bench-scale-secret'
const CLK_TCK = 100
const IDLE_MINUTE = 60_000

/** Resident memory of a process, bytes. */
export const rss = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)[1]) * 1024
/** CPU time of a process so far, ms. */
export function cpu(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  const value = sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
  return Math.round(value * 10) / 10
}

/**
 * Waits until a process's resident memory holds still (within 1.5 % over 15 s: V8 gives
 * back what a burst of allocations took some seconds after it ends), at most `most` ms.
 */
async function settled(pid, most = 90_000) {
  const end = Date.now() + most
  const samples = [rss(pid)]
  for (;;) {
    await sleep(3000)
    samples.push(rss(pid))
    const last = samples.slice(-6)
    if ((last.length === 6 && Math.max(...last) - Math.min(...last) < last[0] * 0.015) || Date.now() > end) {
      return samples.at(-1)
    }
  }
}

const start = (args) => startSyncServer(['--streams-per-user', '100000', '--streams-per-client', '4', ...args])
const authed = (args) => start(['--jwt-secret', SECRET, '--scope-field', 'project', ...args])

/**
 * Dense streams: resident memory per idle stream with `count` streams on one instance (once
 * the process settled, before and after; and right after they opened), and its CPU while
 * they idle for `idleSeconds` (heartbeats included: default every 15 s).
 */
export async function denseStreams(postgresUrl, { count = 10_000, idleSeconds = 32 } = {}) {
  const server = await start(['--insecure-no-auth', '--database-url', postgresUrl])
  try {
    const warm = await holdStreams({ urls: [server.url], count: 200, since: 0 })
    await warm.close()
    // An idle minute first each time: V8 gives back what a burst of allocations took once it is quiet.
    await sleep(IDLE_MINUTE)
    const before = await settled(server.pid)
    const streams = await holdStreams({ urls: [server.url], count, since: 0 })
    const opened = rss(server.pid)
    await sleep(IDLE_MINUTE)
    const after = await settled(server.pid)
    const cpuBefore = cpu(server.pid)
    await sleep(idleSeconds * 1000)
    const idleCpu = (cpu(server.pid) - cpuBefore) / (idleSeconds * 1000)
    await streams.close()
    const result = {
      streams: count,
      rssPerStreamKB: Math.round((after - before) / count / 102.4) / 10,
      rssPerStreamOpenedKB: Math.round((opened - before) / count / 102.4) / 10,
      idleCpuPercent: Math.round(idleCpu * 10000) / 100,
    }
    log(
      `dense streams: ${result.rssPerStreamKB} KB of RSS per idle stream with ${count} on one instance, settled ` +
        `(${result.rssPerStreamOpenedKB} KB right after opening); idle CPU ${result.idleCpuPercent} %`,
    )
    return result
  } finally {
    await server.stop()
  }
}

/** A push of one update to entity `key` of `project`, as the writer. */
const writeIn = (url, writer, rev, project, n) =>
  pushBatch(
    url,
    writer,
    rev,
    [
      {
        type: 'update',
        table: 'tasks',
        key: `${project}-${n % 10}`,
        value: { id: `${project}-${n % 10}`, project, n },
      },
    ],
    { authorization: `Bearer ${signToken(SECRET, 'writer', { scopes: ['p0'] })}` },
  )

/**
 * CPU per write with `count` streams: 10 read the written scope p0, the others spread over
 * 999 other scopes. The cost of a write should not depend on the streams of other scopes.
 */
async function cpuPerWriteWith(postgresUrl, count, writes) {
  const server = await authed(['--database-url', postgresUrl])
  try {
    const streams = await holdStreams({
      urls: [server.url],
      count,
      since: 0,
      secret: SECRET,
      scopes: (i) => [i < 10 ? 'p0' : `p${1 + (i % 999)}`],
    })
    const writer = `writer-${count}`
    for (let rev = 1; rev <= 20; rev++) await writeIn(server.url, writer, rev, 'p0', rev) // warm-up
    await sleep(500)
    const before = cpu(server.pid)
    for (let rev = 21; rev < 21 + writes; rev++) await writeIn(server.url, writer, rev, 'p0', rev)
    await sleep(500)
    const perWrite = (cpu(server.pid) - before) / writes
    await streams.close()
    return Math.round(perWrite * 100) / 100
  } finally {
    await server.stop()
  }
}

export async function cpuPerWrite(postgresUrl, { writes = 500 } = {}) {
  const result = {
    writes,
    thousandMs: await cpuPerWriteWith(postgresUrl, 1000, writes),
    tenThousandMs: await cpuPerWriteWith(postgresUrl, 10_000, writes),
  }
  log(
    `CPU per write (10 streams in its scope): ${result.thousandMs} ms with 1,000 streams, ` +
      `${result.tenThousandMs} ms with 10,000 (the others in 999 other scopes)`,
  )
  return result
}

/** Fan-out latency with `count` streams over `instances` instances: from a push acknowledged to each stream receiving it. */
export async function fanoutAt(postgresUrl, { count = 10_000, instances = 2, pushes = 100 } = {}) {
  const servers = []
  for (let i = 0; i < instances; i++) servers.push(await start(['--insecure-no-auth', '--database-url', postgresUrl]))
  try {
    const head = (await (await fetch(servers[0].url)).json()).head
    const streams = await holdStreams({ urls: servers.map((server) => server.url), count, since: head })
    await sleep(2000)
    const acked = []
    for (let n = 1; n <= pushes; n++) {
      const url = servers[n % servers.length].url
      await pushBatch(url, 'fanout', n, [{ type: 'update', table: 'items', key: 'fan', value: { id: 'fan', n } }])
      acked[n] = performance.timeOrigin + performance.now()
      await sleep(150)
    }
    await sleep(2000)
    const arrivals = await streams.arrivals()
    await streams.close()
    const latencies = []
    let missing = 0
    for (let n = 1; n <= pushes; n++) {
      const times = arrivals.get(n) ?? []
      missing += count - times.length
      for (const at of times) latencies.push(Math.max(0, at - acked[n]))
    }
    const result = {
      streams: count,
      instances,
      pushes,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      missing,
    }
    log(
      `fan-out at ${count} streams over ${instances} instances: p50 ${result.p50} ms, p99 ${result.p99} ms, ${missing} missing`,
    )
    return result
  } finally {
    for (const server of servers) await server.stop()
  }
}

/** Pulls from `since` until the server has no more (redirects followed); the batches received. */
async function catchUp(url, token, clientId) {
  let since = 0
  let batches = 0
  for (;;) {
    const response = await fetch(`${url}/pull?v=2&since=${since}&limit=100&clientId=${clientId}`, {
      headers: { authorization: `Bearer ${token}` },
    })
    if (response.status !== 200) throw new Error(`pull answered ${response.status}: ${await response.text()}`)
    const reply = await response.json()
    batches += reply.batches.length
    since = reply.upTo
    if (!reply.more) return batches
  }
}

/**
 * 1,000 users of one scope catch up from revision 0 at once, through nginx (proxy_cache)
 * in front of a server with cacheable pages: requests that reached the origin (pages and
 * pulls) and the time, against the same without pages, straight to the origin.
 */
export async function cachedCatchUps(postgresUrl, { clients = 1000, revisions = 2000, pageRevisions = 500 } = {}) {
  const run = async (args, throughProxy) => {
    const server = await authed(['--database-url', postgresUrl, ...args])
    const proxy = throughProxy ? await startCachingProxy(server.url) : undefined
    try {
      const head = (await (await fetch(server.url)).json()).head
      const writer = { authorization: `Bearer ${signToken(SECRET, 'seeder', { scopes: ['shared'] })}` }
      // The log: `revisions` batches of the shared scope, by 20 writers at once.
      await Promise.all(
        Array.from({ length: 20 }, async (_, w) => {
          for (let rev = 1; rev <= revisions / 20; rev++) {
            const key = `${w}-${rev % 50}`
            const value = { id: key, project: 'shared', text: 'lorem ipsum '.repeat(8), rev }
            await pushBatch(
              server.url,
              `seed-${Date.now()}-${w}`,
              rev,
              [{ type: 'update', table: 'tasks', key, value }],
              writer,
            )
          }
        }),
      )
      const url = proxy?.url ?? server.url
      const started = performance.now()
      const counts = await Promise.all(
        Array.from({ length: clients }, (_, i) =>
          catchUp(url, signToken(SECRET, `reader-${i}`, { scopes: ['shared'] }), `reader-${head}-${i}`),
        ),
      )
      const ms = Math.round(performance.now() - started)
      if (counts.some((count) => count < revisions)) throw new Error(`a catch-up missed batches: ${counts}`)
      const entries = proxy?.cacheLog() ?? []
      const pages = entries.filter((entry) => entry.uri.startsWith('/page?'))
      return {
        ms,
        originPages: pages.filter((entry) => entry.cache !== 'HIT').length,
        pagesServed: pages.length,
        distinctPages: new Set(pages.map((entry) => entry.uri)).size,
        pulls: entries.filter((entry) => entry.uri.startsWith('/pull?')).length,
      }
    } finally {
      await proxy?.stop()
      await server.stop()
    }
  }
  const cached = await run(['--cacheable-pages', '--page-revisions', String(pageRevisions)], true)
  const direct = await run([], false)
  const result = { clients, revisions, pageRevisions, pages: cached.distinctPages, cached, directMs: direct.ms }
  log(
    `cached catch-ups: ${clients} users × ${revisions} batches: ${cached.originPages} page requests reached the origin ` +
      `for ${cached.pagesServed} served (${result.pages} pages; plus ${cached.pulls} small redirecting pulls), ${cached.ms} ms; ` +
      `without pages, straight to the origin: ${direct.ms} ms`,
  )
  return result
}

/**
 * A streaming replica (pg_basebackup -R) of the primary: its lag under write load (the time
 * from a head showing on the primary to the replica showing it), and the latency of pulls
 * served from it against pulls from the primary, both under that load.
 */
export async function replicaReads(primary, { seconds = 10, pulls = 400 } = {}) {
  const replica = await startReplica(primary)
  const withReplica = await start([
    '--insecure-no-auth',
    '--database-url',
    primary.url,
    '--read-database-url',
    replica.url,
  ])
  const primaryOnly = await start(['--insecure-no-auth', '--database-url', primary.url])
  const heads = [new pg.Client({ connectionString: primary.url }), new pg.Client({ connectionString: replica.url })]
  try {
    for (const client of heads) await client.connect()
    const headOf = async (client) =>
      Number((await client.query('select head from changecast_meta where id = 1')).rows[0].head)
    // A log to pull from: 2,000 batches.
    await Promise.all(
      Array.from({ length: 20 }, async (_, w) => {
        for (let rev = 1; rev <= 100; rev++) {
          const key = `r-${w}-${rev % 50}`
          await pushBatch(primaryOnly.url, `replica-seed-${w}`, rev, [
            { type: 'update', table: 'items', key, value: { id: key, rev } },
          ])
        }
      }),
    )
    const end = Date.now() + seconds * 1000
    const firstSeen = new Map()
    const lags = []
    const latency = { replica: [], primary: [] }
    let writes = 0
    const load = Promise.all(
      Array.from({ length: 10 }, async (_, w) => {
        for (let rev = 1; Date.now() < end; rev++) {
          const key = `w-${w}-${rev % 50}`
          await pushBatch(primaryOnly.url, `replica-load-${w}`, rev, [
            { type: 'update', table: 'items', key, value: { id: key, rev } },
          ])
          writes++
        }
      }),
    )
    const watch = (async () => {
      let reached = 0
      while (Date.now() < end) {
        const now = performance.now()
        const [onPrimary, onReplica] = await Promise.all(heads.map(headOf))
        for (let head = reached + 1; head <= onPrimary; head++) if (!firstSeen.has(head)) firstSeen.set(head, now)
        for (let head = reached + 1; head <= onReplica; head++) {
          if (firstSeen.has(head)) lags.push(now - firstSeen.get(head))
        }
        reached = Math.max(reached, onReplica)
        await sleep(5)
      }
    })()
    const reads = (async () => {
      for (let i = 0; i < pulls && Date.now() < end; i++) {
        for (const [which, server] of [
          ['replica', withReplica],
          ['primary', primaryOnly],
        ]) {
          const since = Math.floor(Math.random() * 1900)
          const started = performance.now()
          const response = await fetch(`${server.url}/pull?v=2&since=${since}&limit=50&clientId=reader-${which}`)
          await response.json()
          latency[which].push(performance.now() - started)
        }
      }
    })()
    await Promise.all([load, watch, reads])
    const result = {
      writesPerSecond: Math.round(writes / seconds),
      lagP50: percentile(lags, 50),
      lagP99: percentile(lags, 99),
      pullReplicaP50: percentile(latency.replica, 50),
      pullReplicaP99: percentile(latency.replica, 99),
      pullPrimaryP50: percentile(latency.primary, 50),
      pullPrimaryP99: percentile(latency.primary, 99),
      pulls: latency.replica.length,
    }
    log(
      `replica: lag p50 ${result.lagP50} ms, p99 ${result.lagP99} ms under ${result.writesPerSecond} pushes/s; ` +
        `pull (50 batches) from the replica p50 ${result.pullReplicaP50} ms, p99 ${result.pullReplicaP99} ms; ` +
        `from the primary p50 ${result.pullPrimaryP50} ms, p99 ${result.pullPrimaryP99} ms`,
    )
    return result
  } finally {
    for (const client of heads) await client.end().catch(() => undefined)
    await withReplica.stop()
    await primaryOnly.stop()
    replica.stop()
  }
}

/** The write ceiling: accepted changes/s with the same load spread over 1, 2 and 4 instances on one PostgreSQL. */
export async function writeCeiling(postgresUrl, throughput) {
  const result = {}
  for (const instances of [1, 2, 4]) {
    const servers = []
    for (let i = 0; i < instances; i++) servers.push(await start(['--insecure-no-auth', '--database-url', postgresUrl]))
    try {
      result[instances] = await throughput(
        servers.map((server) => server.url),
        `write ceiling, ${instances} instance${instances > 1 ? 's' : ''}`,
      )
    } finally {
      for (const server of servers) await server.stop()
    }
  }
  return result
}
