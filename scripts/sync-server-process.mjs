// The built `changecast-server` CLI as a child process, and a seeder that fills it through
// the protocol: shared by the end-to-end specs and `pnpm bench:server`.
import { spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { fileURLToPath } from 'node:url'

const cli = fileURLToPath(new URL('../packages/server/dist/cli.js', import.meta.url))

/**
 * Starts the CLI on a free port with `args`; resolves with its URL, pid and `stop()` once it
 * listens. Build it first (`buildPackages(['core', 'server'])`).
 */
export function startSyncServer(args) {
  const child = spawn(process.execPath, [cli, '--port', '0', ...args], {
    env: { ...process.env, DATABASE_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const stop = () => {
    child.kill('SIGTERM')
    return exited
  }
  return new Promise((resolve, reject) => {
    const read = (chunk) => {
      output += chunk
      const url = output.match(/listening on (http:\/\/\S+?)\/?\s/)?.[1]
      if (url) resolve({ url, pid: child.pid, stop, output: () => output })
    }
    child.stdout.on('data', read)
    child.stderr.on('data', read)
    child.once('exit', (code) => reject(new Error(`server exited (${code}): ${output}`)))
  })
}

/** Pushes one batch of `changes` as `clientId`'s local commit `rev`; resolves with its server revision. */
export async function pushBatch(url, clientId, rev, changes, headers = {}) {
  const response = await fetch(`${url}/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ v: 2, clientId, batches: [{ rev, tx: `${clientId}.${rev}`, at: Date.now(), changes }] }),
  })
  if (response.status !== 200) throw new Error(`push answered ${response.status}: ${await response.text()}`)
  const reply = await response.json()
  if (reply.acked.length !== 1) throw new Error(`push not acked: ${JSON.stringify(reply)}`)
  return reply.acked[0].serverRev
}

/** A row of about 200 bytes as JSON. */
export const seedRow = (id, project = `project:${id % 1000}`) => ({
  id,
  project,
  title: `Row ${id} — ${'lorem ipsum dolor sit amet '.repeat(4).trim()}`,
  done: id % 3 === 0,
  updatedAt: 1795812345678 + id,
})

/**
 * Creates rows `from`..`from + count - 1` of table `rows` on the server, in batches of
 * `batch` changes; `row(id)` makes each value.
 */
export async function seedRows(url, { from = 1, count, batch = 2000, row = seedRow, headers, clientId = 'seeder' }) {
  let rev = 0
  for (let first = from; first < from + count; first += batch) {
    const changes = []
    for (let id = first; id < Math.min(first + batch, from + count); id++) {
      changes.push({ type: 'create', table: 'rows', key: id, value: row(id) })
    }
    await pushBatch(url, `${clientId}-${from}`, ++rev, changes, headers)
  }
}

/** An HS256 JSON Web Token for `sub`, signed with `secret`, valid for an hour. */
export function signToken(secret, sub, claims = {}) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub, exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}`
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`
}
