// The load generator's streams for `pnpm bench:server`: thousands of Server-Sent Events
// streams held as raw sockets (cheap per stream), spread over worker threads so that reading
// 10,000 deliveries of one batch does not queue behind one thread, and over loopback source
// addresses (127.0.0.2–251) so that ports never run short. Each records when it receives each
// batch whose tx is `fanout.<n>` (absolute ms: performance.timeOrigin + now()).
import net from 'node:net'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { signToken } from '../scripts/sync-server-process.mjs'

/**
 * Opens `count` streams spread over `urls` (stream i to `urls[i % urls.length]`), `since`
 * given, in `threads` worker threads; `scopes(i)` (optional) makes stream i a user of those
 * scopes (a JWT signed with `secret`). Resolves once every stream has its `hello`, with
 * `arrivals()` (per n, the times its batch arrived) and `close()`.
 */
export async function holdStreams({ urls, count, since, threads = 2, secret, scopes, wave = 500 }) {
  // Client ids of this run only (a client id stays bound to the user that first used it).
  const run = Date.now().toString(36)
  const workers = []
  for (let part = 0; part < threads; part++) {
    const indices = []
    for (let i = part; i < count; i += threads) indices.push(i)
    const streams = indices.map((i) => {
      const url = new URL(urls[i % urls.length])
      const token = secret ? signToken(secret, `user-${i}`, { scopes: scopes(i) }) : undefined
      return { i, host: url.hostname, port: Number(url.port), path: url.pathname.replace(/\/$/, ''), token }
    })
    const worker = new Worker(new URL(import.meta.url), { workerData: { streams, since, wave, run } })
    workers.push(worker)
  }
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise((resolve, reject) => {
          worker.once('error', reject)
          worker.on('message', (message) => message === 'ready' && resolve())
        }),
    ),
  )
  return {
    async arrivals() {
      const all = new Map()
      for (const worker of workers) {
        const reply = new Promise((resolve) => worker.once('message', resolve))
        worker.postMessage('report')
        for (const [n, times] of await reply) all.set(n, [...(all.get(n) ?? []), ...times])
      }
      return all
    },
    async close() {
      await Promise.all(workers.map((worker) => worker.terminate()))
    },
  }
}

if (!isMainThread) {
  const { streams, since, wave, run } = workerData
  const arrivals = new Map()
  const sockets = []
  const failures = []
  let ready = 0
  const open = ({ i, host, port, path, token }) => {
    const socket = net.connect({ host, port, localAddress: `127.0.0.${2 + (i % 250)}` })
    socket.setEncoding('latin1')
    socket.write(
      `GET ${path}/stream?v=2&since=${since}&clientId=stream-${run}-${i} HTTP/1.1\r\nHost: ${host}:${port}\r\n` +
        `${token ? `Authorization: Bearer ${token}\r\n` : ''}\r\n`,
    )
    let hello = false
    let first = true
    socket.on('data', (data) => {
      const at = performance.timeOrigin + performance.now()
      if (first && !data.startsWith('HTTP/1.1 200')) {
        failures.push(`stream ${i}: ${data.slice(0, 300)}`)
        socket.destroy()
        return
      }
      first = false
      if (!hello && data.includes('event: hello')) {
        hello = true
        ready++
      }
      for (let from = data.indexOf('"tx":"fanout.'); from >= 0; from = data.indexOf('"tx":"fanout.', from + 1)) {
        const n = Number.parseInt(data.slice(from + 13, from + 24), 10)
        const times = arrivals.get(n)
        if (times) times.push(at)
        else arrivals.set(n, [at])
      }
    })
    socket.on('error', (error) => console.error(`[bench:server] stream ${i}: ${error.message}`))
    sockets.push(socket)
  }
  // In waves, as clients arrive, so that the server's start-up of each stays small.
  for (let from = 0; from < streams.length; from += wave) {
    const target = Math.min(from + wave, streams.length)
    for (const stream of streams.slice(from, target)) open(stream)
    while (ready < target && failures.length === 0) await new Promise((resolve) => setTimeout(resolve, 20))
    if (failures.length > 0) throw new Error(`${failures.length} streams refused, e.g. ${failures[0]}`)
  }
  parentPort.postMessage('ready')
  parentPort.on('message', (message) => {
    if (message === 'report') parentPort.postMessage([...arrivals])
  })
}
