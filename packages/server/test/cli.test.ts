// The `changecast-server` command: its options, and the real process on PGlite.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseCommandLine, scopeByField } from '../src/cli.js'
import { startCli } from './processes.js'

describe('changecast-server options', () => {
  it('defaults: port 8787, loopback, PGlite in ./.changecast, no auth, the protocol at the root', () => {
    expect(parseCommandLine([], {})).toMatchObject({
      port: 8787,
      host: '127.0.0.1',
      base: '',
      data: './.changecast',
      databaseUrl: undefined,
      auth: undefined,
    })
  })

  it('reads PORT, DATABASE_URL and CHANGECAST_JWT_SECRET from the environment', () => {
    expect(
      parseCommandLine([], { PORT: '9000', DATABASE_URL: 'postgres://db/app', CHANGECAST_JWT_SECRET: 's3cret' }),
    ).toMatchObject({ port: 9000, databaseUrl: 'postgres://db/app', auth: { secret: 's3cret' } })
  })

  it('normalises --base and --cors-origin', () => {
    expect(parseCommandLine(['--base', 'sync/', '--cors-origin', 'https://a.test, https://b.test'], {})).toMatchObject({
      base: '/sync',
      corsOrigin: ['https://a.test', 'https://b.test'],
    })
    expect(parseCommandLine(['--cors-origin', '*'], {}).corsOrigin).toBe('*')
  })

  it('reads --retention as a duration and --scope-field as a field name', () => {
    expect(parseCommandLine(['--retention', '30d', '--scope-field', 'projectId'], {})).toMatchObject({
      retention: 30 * 86_400_000,
      scopeField: 'projectId',
    })
    expect(parseCommandLine(['--retention', '90m'], {}).retention).toBe(90 * 60_000)
    expect(scopeByField('projectId')({ table: 'tasks', key: 1, value: { projectId: 42 } })).toBe('42')
    expect(() => scopeByField('projectId')({ table: 'tasks', key: 1, value: {} })).toThrow(
      'the value has no projectId (the scope field)',
    )
  })

  const mistakes: Array<[string[], RegExp]> = [
    [['--retention', 'soon'], /--retention must be a duration like 30d/],
    [['--retention', '0'], /--retention must be a duration/],
    [['--scope-field', 'a b'], /--scope-field must be a field name/],
    [['--port', 'eighty'], /--port must be a port number/],
    [['--port', '70000'], /--port must be a port number/],
    [['--data', 'x', '--database-url', 'postgres://db'], /either --data .* or --database-url/],
    [['--jwt-secret', 'a', '--jwks-url', 'https://id.test/jwks'], /either --jwt-secret or --jwks-url/],
    [['--insecure-no-auth', '--jwt-secret', 'a'], /cannot be combined/],
    [['--host', '0.0.0.0'], /refusing to serve 0\.0\.0\.0 without authentication/],
    [['--bogus'], /Unknown option '--bogus'/],
  ]
  for (const [args, message] of mistakes) {
    it(`refuses ${args.join(' ')} with a clear message`, () => {
      expect(() => parseCommandLine(args, {})).toThrow(message)
    })
  }

  it('serves on any address with --insecure-no-auth or a token option', () => {
    expect(parseCommandLine(['--host', '0.0.0.0', '--insecure-no-auth'], {}).host).toBe('0.0.0.0')
    expect(parseCommandLine(['--host', '0.0.0.0', '--jwt-secret', 'a'], {}).auth).toMatchObject({ secret: 'a' })
  })
})

describe('changecast-server process', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'changecast-cli-'))
  }, 120_000)
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('starts with no flags on PGlite in ./.changecast, warns loudly, keeps data across restarts, stops on SIGTERM', async () => {
    const first = await startCli(['--port', '0'], { cwd: dir })
    expect(first.output()).toMatch(/NO AUTHENTICATION/)
    expect(first.output()).toMatch(/PGlite in \.\/\.changecast/)
    const push = await fetch(`${first.url}/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        v: 2,
        clientId: 'cli-test',
        batches: [{ rev: 1, tx: 't1', at: 1, changes: [{ type: 'create', table: 'todos', key: 1, value: { id: 1 } }] }],
      }),
    })
    expect(push.status).toBe(200)
    const info = (await (await fetch(first.url)).json()) as { epoch: string; head: number }
    expect(info).toMatchObject({ server: 'changecast', protocol: 2, head: 1 })
    expect(await first.stop()).toBe(0)

    const second = await startCli(['--port', '0'], { cwd: dir })
    expect((await (await fetch(second.url)).json()) as object).toMatchObject({ epoch: info.epoch, head: 1 })
    expect(await second.stop()).toBe(0)
  }, 60_000)

  it('mounts the protocol under --base', async () => {
    const server = await startCli(['--port', '0', '--base', '/sync', '--data', join(dir, 'based')])
    expect(server.url).toMatch(/\/sync$/)
    expect((await fetch(`${server.url}/pull?v=2&since=0&clientId=x`)).status).toBe(200)
    expect((await fetch(`${server.url.replace(/\/sync$/, '')}/pull?v=2&since=0&clientId=x`)).status).toBe(404)
    await server.stop()
  }, 60_000)

  it('exits with 2 and the usage on a bad option', async () => {
    await expect(startCli(['--port', 'nope'])).rejects.toThrow(
      /exited \(2\)[\s\S]*--port must be a port number[\s\S]*Usage/,
    )
  })
})
