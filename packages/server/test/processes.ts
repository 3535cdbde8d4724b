// The CLI as a real process (its built `dist`, made by the global setup scripts/vitest-build.ts),
// for tests that start, stop and kill servers.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

export interface CliProcess {
  /** Base URL the server listens on. */
  url: string
  child: ChildProcess
  /** Everything it printed. */
  output(): string
  /** SIGTERM, and waits for the exit code. */
  stop(): Promise<number | null>
  /** SIGKILL (kill -9): no shutdown at all. */
  kill(): Promise<void>
}

/** Starts `changecast-server` with `args`; resolves once it listens (or rejects with its output). */
export function startCli(
  args: string[],
  { cwd = root, env = {} }: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliProcess> {
  const child = spawn(process.execPath, [cli, ...args], {
    cwd,
    env: { ...process.env, DATABASE_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`changecast-server did not start:\n${output}`)), 120_000)
    const read = (chunk: Buffer) => {
      output += chunk.toString()
      const url = output.match(/listening on (http:\/\/\S+?)\/?\s/)?.[1]
      if (!url) return
      clearTimeout(timer)
      resolve({
        url,
        child,
        output: () => output,
        async stop() {
          child.kill('SIGTERM')
          return exited
        },
        async kill() {
          child.kill('SIGKILL')
          await exited
        },
      })
    }
    child.stdout.on('data', read)
    child.stderr.on('data', read)
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`changecast-server exited (${code}):\n${output}`))
    })
  })
}
