// Builds packages' `dist` with the workspace's TypeScript (no pnpm needed on the PATH), for
// tests and benchmarks that run the built CLI. Only when a package's sources are newer.
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const tsc = join(root, 'node_modules/typescript/bin/tsc')

/** Newest modification time of the files under `dir`, ms (0 when missing). */
function newest(dir) {
  if (!existsSync(dir)) return 0
  let time = 0
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) time = Math.max(time, statSync(join(entry.parentPath, entry.name)).mtimeMs)
  }
  return time
}

/** Builds each of `names` (folders under packages/) whose dist is missing or older than its sources. */
export function buildPackages(names) {
  for (const name of names) {
    const dir = join(root, 'packages', name)
    const built = existsSync(join(dir, 'dist/index.js')) ? statSync(join(dir, 'dist/index.js')).mtimeMs : 0
    if (built >= Math.max(newest(join(dir, 'src')), newest(join(dir, 'migrations')))) continue
    rmSync(join(dir, 'dist'), { recursive: true, force: true })
    const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: dir, encoding: 'utf8' })
    if (result.status !== 0) throw new Error(`Could not build packages/${name}:\n${result.stdout}${result.stderr}`)
    if (existsSync(join(dir, 'dist/cli.js'))) chmodSync(join(dir, 'dist/cli.js'), 0o755)
  }
}
