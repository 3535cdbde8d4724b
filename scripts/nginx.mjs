// A caching reverse proxy for the tests and the benchmark: Debian's nginx (installed when
// missing, as root), started in a temporary directory in front of a sync server, caching
// `…/page` (cacheable catch-up pages) and passing everything else through, streams
// unbuffered. Its access log records each request's cache status.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './free-port.mjs'

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

/** The nginx binary, installing Debian's `nginx-light` when running as root. */
export function ensureNginx() {
  const find = () =>
    ['/usr/sbin/nginx', spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).stdout.trim()].find(
      (path) => path && existsSync(path),
    )
  const found = find()
  if (found) return found
  if (isRoot && existsSync('/usr/bin/apt-get')) {
    console.log('[changecast] No nginx found: installing Debian package "nginx-light"…')
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
    execFileSync('apt-get', ['install', '-y', '-qq', 'nginx-light'], { stdio: 'inherit', env })
    // Debian starts its own nginx on port 80 where it can: not needed here.
    spawnSync('sh', ['-c', 'service nginx stop || true'], { stdio: 'ignore' })
    const installed = find()
    if (installed) return installed
  }
  throw new Error('No nginx found for the caching proxy tests. Install it: sudo apt-get install -y nginx-light')
}

/** The nginx configuration of a caching proxy on `port` in front of `origin` (host:port). */
export function proxyConfig(dir, port, origin) {
  return `daemon off;
worker_processes 1;
${isRoot ? 'user root;' : ''}
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 8192; }
http {
  log_format cache '$request_uri $status $upstream_cache_status';
  access_log ${dir}/access.log cache;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=changecast:10m max_size=1g inactive=1h use_temp_path=off;
  upstream origin {
    server ${origin};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    proxy_http_version 1.1;
    proxy_set_header Connection '';
    proxy_set_header Host $http_host;
    # Catch-up pages: the same bytes for everyone who holds their signed address, cached as the
    # origin says (Cache-Control), one origin request per page however many ask at once.
    location ~ /page$ {
      proxy_pass http://origin;
      proxy_cache changecast;
      proxy_cache_key $request_uri;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 60s;
      proxy_cache_lock_age 60s;
      add_header X-Cache-Status $upstream_cache_status always;
    }
    # Everything else is a user's own: never cached; streams unbuffered.
    location / {
      proxy_pass http://origin;
      proxy_cache off;
      proxy_buffering off;
      proxy_read_timeout 1h;
    }
  }
}
`
}

/**
 * Starts nginx as a caching proxy in front of `origin` (a URL); resolves with its URL,
 * `cacheLog()` (one `{ uri, status, cache }` per request answered) and `stop()`.
 */
export async function startCachingProxy(origin) {
  const nginx = ensureNginx()
  const dir = mkdtempSync(join(tmpdir(), 'changecast-nginx-'))
  const port = await freePort()
  writeFileSync(join(dir, 'nginx.conf'), proxyConfig(dir, port, new URL(origin).host))
  const child = spawn(nginx, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let errors = ''
  child.stderr.on('data', (chunk) => (errors += chunk))
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const url = `http://127.0.0.1:${port}`
  // Listening once it answers.
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${errors}${readLog(join(dir, 'error.log'))}`)
    const answered = await fetch(`${url}/`).then(
      () => true,
      () => false,
    )
    if (answered) break
    if (attempt > 200) throw new Error(`nginx did not start: ${errors}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return {
    url,
    cacheLog() {
      return readLog(join(dir, 'access.log'))
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [uri, status, cache] = line.split(' ')
          return { uri, status: Number(status), cache }
        })
    },
    async stop() {
      child.kill('SIGQUIT')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

const readLog = (file) => (existsSync(file) ? readFileSync(file, 'utf8') : '')
