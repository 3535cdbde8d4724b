// A throwaway PostgreSQL cluster for the test suites: found (or, as root on Debian,
// installed), created in a temporary directory, started on a free port, stopped and
// removed at the end. Set DATABASE_URL to use a server of your own instead.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, chownSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './free-port.mjs'

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

/** The directory holding initdb and pg_ctl, or undefined. */
export function findPostgres() {
  const onPath = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).stdout.trim()
  if (onPath && existsSync(onPath)) return onPath.replace(/\/initdb$/, '')
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a))
  for (const version of versions) {
    const bin = join(root, version, 'bin')
    if (existsSync(join(bin, 'initdb'))) return bin
  }
  return undefined
}

/** A PostgreSQL program: beside initdb, else in Debian's versioned directory, else on the PATH. */
function toolPath(bin, name) {
  if (existsSync(join(bin, name))) return join(bin, name)
  const root = '/usr/lib/postgresql'
  for (const version of existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : []) {
    if (existsSync(join(root, version, 'bin', name))) return join(root, version, 'bin', name)
  }
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim() || name
}

/** The PostgreSQL binaries, installing Debian's `postgresql` package when running as root. */
export function ensurePostgres() {
  const found = findPostgres()
  if (found) return found
  if (isRoot && existsSync('/usr/bin/apt-get')) {
    console.log('[changecast] No PostgreSQL found: installing Debian package "postgresql"…')
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' })
    execFileSync('apt-get', ['install', '-y', '-qq', 'postgresql'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    })
    const installed = findPostgres()
    if (installed) return installed
  }
  throw new Error(
    'No PostgreSQL server binaries (initdb, pg_ctl) found for the PostgreSQL tests. Install one of:\n' +
      '  - Debian/Ubuntu: sudo apt-get install -y postgresql\n' +
      '  - or set DATABASE_URL=postgres://user:password@host:port/database to use your own server',
  )
}

/**
 * A temporary directory for a cluster, and `run(program, args)` for PostgreSQL's programs.
 * initdb refuses to run as root: as root, the directory and the cluster belong to the
 * postgres user, and the programs run as it.
 */
function clusterDirectory(prefix) {
  const bin = ensurePostgres()
  const dir = mkdtempSync(join(tmpdir(), prefix))
  if (isRoot)
    chownSync(
      dir,
      Number(execFileSync('id', ['-u', 'postgres']).toString()),
      Number(execFileSync('id', ['-g', 'postgres']).toString()),
    )
  const run = (program, args) => {
    const full = toolPath(bin, program)
    if (isRoot) execFileSync('runuser', ['-u', 'postgres', '--', full, ...args], { stdio: 'pipe' })
    else execFileSync(full, args, { stdio: 'pipe' })
  }
  return { dir, run }
}

/**
 * Creates and starts a cluster. Returns its URL (superuser `postgres`, trust auth, on
 * 127.0.0.1) and a function that stops it and removes its files.
 */
export async function startPostgres() {
  const { dir, run } = clusterDirectory('changecast-pg-')
  const data = join(dir, 'data')
  const port = await freePort()
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8'])
  run('pg_ctl', [
    '-D',
    data,
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
    '-l',
    join(dir, 'log'),
    '-w',
    'start',
  ])
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop'])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}

/**
 * A streaming replica of a cluster started by {@link startPostgres} (`pg_basebackup -R`, in
 * its own temporary directory, on a free port, hot standby). Returns its URL, `down()` and
 * `up()` (stops and starts it, keeping its files), and `stop()` (stops it and removes them).
 */
export async function startReplica(primary) {
  const { dir, run } = clusterDirectory('changecast-replica-')
  const data = join(dir, 'data')
  const port = await freePort()
  const from = new URL(primary.url)
  run('pg_basebackup', [
    '-h',
    from.hostname,
    '-p',
    from.port,
    '-U',
    'postgres',
    '-D',
    data,
    '-R',
    '-X',
    'stream',
    '-c',
    'fast',
  ])
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 -c hot_standby=on -c hot_standby_feedback=on`
  const up = () => run('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', 'start'])
  const down = () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop'])
  up()
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    up,
    down,
    stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop'])
      } catch {
        // Already stopped.
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
