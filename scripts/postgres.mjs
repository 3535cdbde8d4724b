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
 * Creates and starts a cluster. Returns its URL (superuser `postgres`, trust auth, on
 * 127.0.0.1) and a function that stops it and removes its files.
 */
export async function startPostgres() {
  const bin = ensurePostgres()
  const dir = mkdtempSync(join(tmpdir(), 'changecast-pg-'))
  // initdb refuses to run as root: as root, the cluster belongs to the postgres user.
  const run = (command, args) => {
    const full = join(bin, command)
    if (isRoot) execFileSync('runuser', ['-u', 'postgres', '--', full, ...args], { stdio: 'pipe' })
    else execFileSync(full, args, { stdio: 'pipe' })
  }
  if (isRoot)
    chownSync(
      dir,
      Number(execFileSync('id', ['-u', 'postgres']).toString()),
      Number(execFileSync('id', ['-g', 'postgres']).toString()),
    )
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
    stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop'])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
