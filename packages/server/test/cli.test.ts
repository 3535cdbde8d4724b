// The `changecast-server` command: its options, and the real process on PGlite.
import { PGlite } from '@electric-sql/pglite'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseCommandLine, scopeByField } from '../src/cli.js'
import { PGLITE_POSTGRES_VERSION } from '../src/db/data-directory.js'
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

  it('reads --read-database-url (repeated) and --max-replica-lag', () => {
    expect(
      parseCommandLine(
        [
          '--database-url',
          'postgres://primary/app',
          '--read-database-url',
          'postgres://replica1/app',
          '--read-database-url',
          'postgres://replica2/app',
          '--max-replica-lag',
          '2s',
        ],
        {},
      ),
    ).toMatchObject({ readDatabaseUrls: ['postgres://replica1/app', 'postgres://replica2/app'], maxReplicaLag: 2000 })
  })

  it('reads --cacheable-pages and --page-revisions', () => {
    expect(parseCommandLine(['--cacheable-pages'], {}).pages).toEqual({ revisions: undefined })
    expect(parseCommandLine(['--cacheable-pages', '--page-revisions', '500'], {}).pages).toEqual({ revisions: 500 })
    expect(parseCommandLine([], {}).pages).toBeUndefined()
  })

  const mistakes: Array<[string[], RegExp]> = [
    [['--page-revisions', '500'], /--page-revisions needs --cacheable-pages/],
    [['--cacheable-pages', '--page-revisions', '0'], /--page-revisions must be a positive whole number/],
    [['--read-database-url', 'postgres://replica'], /--read-database-url needs --database-url/],
    [['--database-url', 'postgres://db', '--max-replica-lag', 'later'], /--max-replica-lag must be a duration/],
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

  it('reads the fairness bounds, and refuses ones that are not positive whole numbers', () => {
    expect(
      parseCommandLine(['--streams-per-client', '2', '--streams-per-user', '5000', '--reads-per-user', '1'], {}).limits,
    ).toEqual({ streamsPerClient: 2, streamsPerPrincipal: 5000, readsPerPrincipal: 1 })
    expect(parseCommandLine([], {}).limits).toEqual({})
    expect(() => parseCommandLine(['--streams-per-user', '0'], {})).toThrow(
      '--streams-per-user must be a positive whole number, got "0"',
    )
    expect(() => parseCommandLine(['--reads-per-user', '1.5'], {})).toThrow(
      '--reads-per-user must be a positive whole number',
    )
  })

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
  }, 180_000)

  it('mounts the protocol under --base', async () => {
    const server = await startCli(['--port', '0', '--base', '/sync', '--data', join(dir, 'based')])
    expect(server.url).toMatch(/\/sync$/)
    expect((await fetch(`${server.url}/pull?v=2&since=0&clientId=x`)).status).toBe(200)
    expect((await fetch(`${server.url.replace(/\/sync$/, '')}/pull?v=2&since=0&clientId=x`)).status).toBe(404)
    await server.stop()
  }, 180_000)

  it('says what it does from the start: creating, opening, recovering after kill -9, then one line when it listens', async () => {
    const data = join(dir, 'spoken')
    const lines = (output: string) => output.split('\n').filter((line) => line.startsWith('changecast-server:'))
    const first = await startCli(['--port', '0', '--data', data])
    expect(lines(first.output())).toEqual([
      `changecast-server: creating a PGlite database in ${data} …`,
      `changecast-server: listening on ${first.url}/ (PGlite in ${data})`,
    ])
    // The version refused in other directories is the one PGlite writes.
    expect(readFileSync(join(data, 'PG_VERSION'), 'utf8').trim()).toBe(PGLITE_POSTGRES_VERSION)
    await first.kill()
    const second = await startCli(['--port', '0', '--data', data])
    expect(lines(second.output())[0]).toBe(
      `changecast-server: opening PGlite in ${data}: recovering after an unclean stop …`,
    )
    expect(await second.stop()).toBe(0)
    const third = await startCli(['--port', '0', '--data', data])
    expect(lines(third.output())[0]).toBe(`changecast-server: opening PGlite in ${data} …`)
    expect(await third.stop()).toBe(0)
  }, 120_000)

  it('a data directory it cannot use: one line naming it, exit code 2, no stack trace, nothing written there', async () => {
    const refused = async (path: string, message: string) => {
      const before = existsSync(path) && statSync(path).isDirectory() ? readdirSync(path).sort() : undefined
      const error = await startCli(['--port', '0', '--data', path]).then<Error, Error>(
        () => expect.fail(`started on ${path}`),
        (error: Error) => error,
      )
      const output = error.message
        .split('\n')
        .slice(1)
        .filter((line) => line && !/AUTHENTICATION|local development|^\s*$/.test(line))
      expect(error.message).toMatch(/exited \(2\)/)
      expect(output.at(-1)).toBe(`changecast-server: ${message}`)
      expect(error.message).not.toMatch(/\bat \w|node_modules/)
      if (before) expect(readdirSync(path).sort()).toEqual(before)
    }
    // A directory of someone else's files is never taken over.
    const unrelated = join(dir, 'unrelated')
    mkdirSync(unrelated)
    writeFileSync(join(unrelated, 'important.txt'), 'keep me')
    await refused(unrelated, `${unrelated} is not empty and holds no database (1 entry): give a new or empty directory`)
    expect(readFileSync(join(unrelated, 'important.txt'), 'utf8')).toBe('keep me')
    // A file.
    await refused(
      join(unrelated, 'important.txt'),
      `${join(unrelated, 'important.txt')} is a file, not a data directory`,
    )
    // A copy of a good directory, made foreign or damaged.
    const good = join(dir, 'good')
    await (await startCli(['--port', '0', '--data', good])).stop()
    const copy = (name: string) => {
      cpSync(good, join(dir, name), { recursive: true })
      return join(dir, name)
    }
    const older = copy('older')
    writeFileSync(join(older, 'PG_VERSION'), '15\n')
    await refused(
      older,
      `${older} holds a PostgreSQL 15 database, and PGlite is PostgreSQL ${PGLITE_POSTGRES_VERSION}: use --database-url for a PostgreSQL server, or a new directory`,
    )
    const damaged = copy('damaged')
    writeFileSync(join(damaged, 'global', 'pg_control'), Buffer.alloc(8192, 7))
    await refused(
      damaged,
      `could not open the data directory ${damaged}: it is damaged or not PGlite's (PGlite failed to initialize properly)`,
    )
    // Another application's PGlite database.
    const other = join(dir, 'other-app')
    const app = await PGlite.create(other)
    await app.exec('create table invoices (id int primary key)')
    await app.close()
    await refused(
      other,
      `${other} holds another application's database (1 table, none of Changecast's): give a new directory`,
    )
  }, 120_000)

  it('exits with 2 and the usage on a bad option', async () => {
    await expect(startCli(['--port', 'nope'])).rejects.toThrow(
      /exited \(2\)[\s\S]*--port must be a port number[\s\S]*Usage/,
    )
  })
})
