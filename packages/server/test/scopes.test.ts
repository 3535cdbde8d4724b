// Scopes on the real server: the seeded scenario of packages/core/test/scopes.ts on PGlite
// and on PostgreSQL (two instances behind a random balancer), plus the server's own rules:
// writes outside a principal's scopes, rejections that do not leak, moves, snapshots and
// compaction.
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import type { PushReply } from '@changecast/core/protocol'
import { createSyncServer, withFaults } from '@changecast/testing'
import { createSyncHandler, openPGlite, openPostgres, type Database, type SyncHandler } from '@changecast/server'
import { seedsToRun } from '../../core/test/convergence.js'
import { SCOPE_FAULTS, scopeOfTask, scopesScenario, type OpenScopedTarget, type Task } from '../../core/test/scopes.js'
import { closeAll } from '../../core/test/sync-helpers.js'
import { freshPostgres } from './backends.js'

const mock = setupServer()
beforeAll(() => mock.listen({ onUnhandledRequest: 'error' }))
afterAll(() => mock.close())
afterEach(async () => {
  await closeAll()
  mock.resetHandlers()
})

function realServer(open: () => Promise<{ databases: Database[]; drop(): Promise<void> }>): OpenScopedTarget {
  return async (random, members) => {
    const { databases, drop } = await open()
    const instances: SyncHandler[] = []
    for (const database of databases) {
      const handler = createSyncHandler({
        database,
        authenticate: (request) => ({ id: request.headers.get('x-user') ?? 'nobody' }),
        scopeOf: scopeOfTask,
        scopes: (principal) => ({ read: members(principal.id) }),
        heartbeat: 50,
        pollInterval: 100,
      })
      await handler.ready
      instances.push(handler)
    }
    const pick = () => instances[Math.floor(random() * instances.length)]!
    const faulty = withFaults((request) => pick()(request), { random, ...SCOPE_FAULTS })
    const db = databases[0]!
    return {
      async handle(request) {
        const url = new URL(request.url)
        const route = `http://sync.server/${url.pathname.split('/').pop()}${url.search}`
        const body = request.method === 'POST' ? await request.text() : undefined
        return faulty(
          new Request(route, { method: request.method, headers: request.headers, body, signal: request.signal }),
        )
      },
      configure: (faults) => faulty.configure(faults),
      edit: async (changes) => void (await pick().write(changes, { origin: 'backend' })),
      compact: async () => void (await pick().compact({ upTo: Number.MAX_SAFE_INTEGER })),
      rows: async () =>
        (
          await db.query<{ value: string }>(
            "select value from changecast_entities where tbl = 'tasks' and value is not null",
          )
        ).map((row) => JSON.parse(row.value) as Task),
      async close() {
        for (const instance of instances) await instance.close()
        await drop()
      },
    }
  }
}

const targets: Array<[string, OpenScopedTarget]> = [
  [
    'PGlite',
    realServer(async () => {
      const database = await openPGlite()
      return { databases: [database], drop: () => database.close() }
    }),
  ],
  [
    'PostgreSQL, two instances',
    realServer(async () => {
      const fresh = await freshPostgres()
      const databases = [await openPostgres(fresh.url, { max: 4 }), await openPostgres(fresh.url, { max: 4 })]
      return {
        databases,
        async drop() {
          for (const database of databases) await database.close()
          await fresh.drop()
        },
      }
    }),
  ],
]
for (const [name, target] of targets) {
  describe(`scopes on ${name}: each client holds exactly its user's projects, and never sees another's (seeded)`, () => {
    for (const seed of seedsToRun()) {
      it(`seed ${seed}`, () => scopesScenario(seed, target, mock), 180_000)
    }
  })
}

/** A server of each kind with tasks scoped by project; `x-user` names the user, `members` their projects. */
type Backend = 'memory' | 'pglite' | 'postgres'
/** Every user reads its projects and writes them and the inbox (which only the backend reads). */
const grants = (read: string[] = []) => ({ read, write: [...read, 'inbox'] })
async function scopedServer(backend: Backend, members: Record<string, string[]>) {
  if (backend === 'memory') {
    const server = createSyncServer({
      scopeOf: scopeOfTask,
      scopes: (request) => grants(members[request.headers.get('x-user') ?? '']),
    })
    return {
      handle: (request: Request) => server.handle(request),
      write: (changes: BackendChanges) => Promise.resolve(void server.edit([...changes], 'backend')),
      compact: () => Promise.resolve(server.compact()),
      close: () => Promise.resolve(server.close()),
    }
  }
  const postgres = backend === 'postgres' ? await freshPostgres() : undefined
  const database = postgres ? await openPostgres(postgres.url) : await openPGlite()
  const handler = createSyncHandler({
    database,
    authenticate: (request) => ({ id: request.headers.get('x-user') ?? 'nobody' }),
    scopeOf: scopeOfTask,
    scopes: (principal) => grants(members[principal.id]),
    pollInterval: 100,
  })
  await handler.ready
  return {
    handle: handler,
    write: async (changes: BackendChanges) => void (await handler.write(changes)),
    compact: async () => void (await handler.compact({ upTo: Number.MAX_SAFE_INTEGER })),
    async close() {
      await handler.close()
      await database.close()
      await postgres?.drop()
    },
  }
}
type BackendChanges = Parameters<SyncHandler['write']>[0]

const task = (id: number, project: string, title = `task ${id}`): Task => ({ id, project, title })
const put = (value: Task) => ({ type: 'update' as const, table: 'tasks', key: value.id, value })

for (const backend of ['memory', 'pglite', 'postgres'] as const) {
  describe(`scopes, protocol level (${backend})`, () => {
    let server: Awaited<ReturnType<typeof scopedServer>>
    const members: Record<string, string[]> = {}
    beforeEach(async () => {
      Object.assign(members, { u1: ['project:1'], u2: ['project:2'], both: ['project:1', 'project:2'] })
      server = await scopedServer(backend, members)
    })
    afterEach(() => server.close())
    const get = async (user: string, path: string) => {
      const response = await server.handle(new Request(`http://sync.test/${path}`, { headers: { 'x-user': user } }))
      expect(response.status, await response.clone().text()).toBe(200)
      return { text: await response.clone().text(), body: (await response.json()) as Record<string, unknown> }
    }
    const pull = (user: string, since = 0, extra = '') =>
      get(user, `pull?v=2&since=${since}&clientId=${user}-c${extra}`)
    const snapshot = (user: string, query = '') => get(user, `snapshot?v=2&clientId=${user}-c${query}`)
    const push = async (user: string, rev: number, changes: unknown[]) => {
      const response = await server.handle(
        new Request('http://sync.test/push', {
          method: 'POST',
          headers: { 'x-user': user, 'content-type': 'application/json' },
          body: JSON.stringify({
            v: 2,
            clientId: `${user}-c`,
            batches: [{ rev, tx: `${user}.${rev}`, at: 1, changes }],
          }),
        }),
      )
      return { text: await response.clone().text(), body: (await response.json()) as PushReply }
    }

    it('a merged update is placed by its merged value: a patch that moves a task is a move, and a patch of a task moved meanwhile is checked where the task is now', async () => {
      await server.write([put(task(1, 'project:1', 'one')), put(task(2, 'project:1', 'two'))])
      const patch = (value: Task, paths: string[]) => ({ ...put(value), patch: paths })
      // 'both' moves task 1 by patching its project: a removal in project:1, the task in project:2.
      const moved = await push('both', 1, [patch(task(1, 'project:2', 'stale title'), ['project'])])
      expect(moved.body.acked).toHaveLength(1)
      expect((await pull('u2')).text).toContain('"title":"one"')
      expect((await pull('u2')).text).not.toContain('stale title')
      const seenByU1 = (await pull('u1')).body.batches as Array<{ changes: Array<{ key: number; removed?: boolean }> }>
      expect(
        seenByU1
          .flatMap((batch) => batch.changes)
          .filter((change) => change.key === 1)
          .at(-1),
      ).toMatchObject({
        removed: true,
      })
      // The backend moves task 2 to project:2; u1, who only writes project:1 (and the inbox),
      // renames it from its stale copy: the merged value is in project:2, so it is refused.
      await server.write([put(task(2, 'project:2', 'two'))])
      const refused = await push('u1', 1, [patch(task(2, 'project:1', 'renamed'), ['title'])])
      expect(refused.body.rejected).toEqual([
        expect.objectContaining({ rev: 1, code: 'forbidden', current: [{ table: 'tasks', key: 2 }] }),
      ])
      expect(refused.text).not.toContain('project:2')
    })

    it('delivers each user only the tasks of its projects, in pulls and snapshots, and says which scopes', async () => {
      await server.write([put(task(1, 'project:1', 'one-secret')), put(task(2, 'project:2', 'two-secret'))])
      const u1 = await pull('u1')
      expect(u1.text).not.toContain('two-secret')
      expect(u1.body.scopes).toEqual(['project:1'])
      const snap = await snapshot('u2')
      expect(snap.text).not.toContain('one-secret')
      expect(snap.body).toMatchObject({
        scopes: ['project:2'],
        total: 1,
        rows: [put(task(2, 'project:2', 'two-secret'))],
      })
      // A subscription narrows what is read, within what the user may read; a scope it may not read is left out.
      const narrowed = await snapshot('both', '&scope=project:2&scope=project:9')
      expect(narrowed.body).toMatchObject({ scopes: ['project:2'], total: 1 })
    })

    it('refuses a write to a project the user is not in, and its rejection leaks neither the value nor the scope there', async () => {
      await server.write([put(task(7, 'project:2', 'not-for-u1'))])
      const logged = vi.spyOn(console, 'warn').mockImplementation(() => undefined)
      const outside = await push('u1', 1, [put(task(8, 'project:2'))])
      expect(outside.body.rejected).toEqual([
        expect.objectContaining({
          rev: 1,
          code: 'forbidden',
          reason: 'not allowed to update tasks 8',
          current: [{ table: 'tasks', key: 8 }],
        }),
      ])
      // Overwriting someone else's task from one's own project: refused, and `current` says nothing of it.
      const steal = await push('u1', 2, [put(task(7, 'project:1', 'mine now'))])
      expect(steal.body.rejected).toEqual([expect.objectContaining({ rev: 2, current: [{ table: 'tasks', key: 7 }] })])
      expect(steal.text).not.toContain('not-for-u1')
      expect(steal.text).not.toContain('project:2')
      expect((await pull('u2')).body.batches).toHaveLength(1)
      // The detail goes to the server's log only.
      if (backend !== 'memory')
        expect(logged.mock.calls.map(([line]) => String(line))).toEqual([
          '[changecast-server] refused not allowed to update tasks 8: u1 may not write scope "project:2"',
          '[changecast-server] refused not allowed to update tasks 7: u1 may not write scope "project:2", where the entity is',
        ])
      logged.mockRestore()
    })

    it('a write into a scope the user may write but not read is acked with the entity in current, without its value', async () => {
      const into = await push('u1', 1, [
        put(task(1, 'project:1')),
        put(task(2, 'inbox', 'a note')),
        put(task(3, 'inbox')),
      ])
      expect(into.body.acked).toEqual([
        {
          rev: 1,
          serverRev: 1,
          current: [
            { table: 'tasks', key: 2 },
            { table: 'tasks', key: 3 },
          ],
        },
      ])
      expect(into.text).not.toContain('inbox')
      // Sent again (a lost reply): acked again, the same way.
      expect(
        (await push('u1', 1, [put(task(1, 'project:1')), put(task(2, 'inbox', 'a note')), put(task(3, 'inbox'))])).body
          .acked,
      ).toEqual(into.body.acked)
      // Moved out of the inbox into a readable project within the batch: nothing to let go.
      const back = await push('u1', 2, [put(task(4, 'inbox')), put(task(4, 'project:1'))])
      expect(back.body.acked).toEqual([{ rev: 2, serverRev: 2 }])
      expect((await pull('u1')).text).not.toContain('inbox')
    })

    it('a task moved to another project is a removal for those who lose it and a value for those who gain it', async () => {
      await server.write([put(task(1, 'project:1'))])
      const { body: before } = await pull('u1')
      await server.write([put(task(1, 'project:2', 'moved'))])
      const after = (user: string) => pull(user, before.upTo as number)
      const changesOf = (body: Record<string, unknown>) =>
        (body.batches as Array<{ changes: unknown[] }>).flatMap((batch) => batch.changes)
      expect(changesOf((await after('u1')).body)).toEqual([{ type: 'delete', table: 'tasks', key: 1, removed: true }])
      expect(changesOf((await after('u2')).body)).toEqual([put(task(1, 'project:2', 'moved'))])
      // Someone who reads both projects sees the move as an update, not a removal.
      expect(changesOf((await after('both')).body)).toEqual([put(task(1, 'project:2', 'moved'))])
    })

    it('snapshots come in pages at one revision, whatever is written between pages', async () => {
      await server.write([1, 2, 3, 4, 5].map((id) => put(task(id, 'project:1'))))
      await server.write([put(task(6, 'project:2'))])
      const first = await snapshot('u1', '&limit=2')
      expect(first.body).toMatchObject({ total: 5, rows: [expect.anything(), expect.anything()] })
      await server.write([put(task(9, 'project:1')), { type: 'delete', table: 'tasks', key: 1 }])
      const rows = [...(first.body.rows as Task[])]
      let next = first.body.next as string | undefined
      while (next) {
        const page = await snapshot('u1', `&limit=2&rev=${first.body.rev as number}&after=${encodeURIComponent(next)}`)
        expect(page.body.rev).toBe(first.body.rev)
        rows.push(...(page.body.rows as Task[]))
        next = page.body.next as string | undefined
      }
      expect(rows.map((row) => (row as unknown as { key: number }).key).sort()).toEqual([1, 2, 3, 4, 5])
    })

    /** Every row of a snapshot, page by page (`query` adds to each request). */
    const allPages = async (user: string, query: string) => {
      const first = await snapshot(user, query)
      const pages = [first.body]
      let next = first.body.next as string | undefined
      while (next) {
        const page = await snapshot(user, `${query}&rev=${first.body.rev as number}&after=${encodeURIComponent(next)}`)
        pages.push(page.body)
        next = page.body.next as string | undefined
      }
      return { total: first.body.total, pages, rows: pages.flatMap((page) => page.rows as Task[]) }
    }

    it('the total of a snapshot at an older revision counts what it holds, whatever changed since', async () => {
      await server.write([1, 2, 3, 4].map((id) => put(task(id, 'project:1'))))
      await server.write([put(task(5, 'project:2')), put(task(6, 'project:1'))])
      const { body: at } = await snapshot('u1')
      // After that revision: an update, a delete, a move out, a move in, a new task.
      await server.write([put(task(1, 'project:1', 'later'))])
      await server.write([{ type: 'delete', table: 'tasks', key: 2 }])
      await server.write([put(task(3, 'project:2', 'moved out'))])
      await server.write([put(task(5, 'project:1', 'moved in'))])
      await server.write([put(task(7, 'project:1'))])
      for (const user of ['u1', 'u2', 'both']) {
        const old = await allPages(user, `&limit=2&rev=${at.rev as number}`)
        expect(old.total).toBe(old.rows.length)
        const now = await allPages(user, '&limit=2')
        expect(now.total).toBe(now.rows.length)
      }
      const old = await allPages('u1', `&limit=2&rev=${at.rev as number}`)
      expect(old.rows.map((row) => (row as unknown as { key: number }).key).sort()).toEqual([1, 2, 3, 4, 6])
      expect(JSON.stringify(old.rows)).not.toContain('later')
    })

    it('a snapshot page carries about 8 MiB at most, whatever the limit', async () => {
      const big = (id: number) => ({ ...task(id, 'project:1'), body: 'x'.repeat(3 * 2 ** 20) })
      for (const id of [1, 2, 3, 4]) await server.write([put(big(id))])
      const { pages, rows, total } = await allPages('u1', '&limit=100')
      expect(total).toBe(4)
      expect(pages.map((page) => (page.rows as unknown[]).length)).toEqual([2, 2])
      expect(rows.map((row) => (row as unknown as { key: number }).key)).toEqual([1, 2, 3, 4])
    }, 180_000)

    it('compaction: positions and snapshots older than it must refetch; a new snapshot holds exactly the live tasks', async () => {
      await server.write([put(task(1, 'project:1', 'v1'))])
      await server.write([put(task(1, 'project:1', 'v2'))])
      await server.write([put(task(2, 'project:1'))])
      const old = await snapshot('u1')
      await server.write([{ type: 'delete', table: 'tasks', key: 2 }])
      await server.compact()
      await server.write([put(task(3, 'project:2'))])
      expect((await pull('u1', 1)).body).toMatchObject({ mustRefetch: true })
      expect((await snapshot('u1', `&rev=${old.body.rev as number}`)).body).toMatchObject({ mustRefetch: true })
      const fresh = await snapshot('u1')
      expect(fresh.body).toMatchObject({ total: 1, rows: [put(task(1, 'project:1', 'v2'))] })
      // At the head nothing is owed: a position there pulls normally.
      expect((await pull('u1', fresh.body.rev as number)).body).toMatchObject({ batches: [], more: false })
      expect((await pull('u1', fresh.body.rev as number)).body.mustRefetch).toBeUndefined()
    })
  })
}
