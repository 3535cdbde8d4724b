// The ordinary life of an app (issue 24): tokens that expire, a server that goes away,
// users who sign out and switch, a server restored from a backup, refused writes.
import Dexie from 'dexie'
import { http, HttpResponse } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { changecast } from '@changecast/core'
import { httpSync, stream } from '@changecast/core/sync'
import { createSyncServer, type SyncServer } from '@changecast/testing'
import { BASE, closeAll, installBrowserGlobals, openClient, until, type Todo } from './sync-helpers.js'

const mock = setupServer()
beforeAll(() => mock.listen({ onUnhandledRequest: 'error' }))
afterAll(() => mock.close())
afterEach(async () => {
  await closeAll()
  mock.resetHandlers()
  mock.events.removeAllListeners()
  vi.restoreAllMocks()
})

/** Serves `server` under `{BASE}/{name}`, answering 401 unless the request carries a token in `valid`. */
function guarded(server: SyncServer, valid: Set<string>): string[] {
  const refused: string[] = []
  mock.use(
    http.all(`${BASE}/:client/:route`, ({ request }) => {
      const token = request.headers.get('authorization') ?? ''
      if (valid.has(token)) return server.handle(request)
      refused.push(token)
      return HttpResponse.json({ error: 'the token has expired' }, { status: 401 })
    }),
  )
  return refused
}

describe('tokens', () => {
  it('a token that expires mid-session: the 401 asks headers() again, the retry goes through, nothing is lost', async () => {
    const server = createSyncServer()
    const valid = new Set(['t1'])
    const refused = guarded(server, valid)
    // An app's token cache, which learns of a refreshed token one call late.
    const cache: { token: string; refreshed?: string } = { token: 't1' }
    const headers = () => {
      const { token } = cache
      if (cache.refreshed) cache.token = cache.refreshed
      return { authorization: token }
    }
    const a = await openClient({ url: `${BASE}/a`, headers })
    await a.db.todos.put({ id: 1, title: 'before' })
    await a.sync.flush()
    valid.delete('t1')
    valid.add('t2')
    cache.refreshed = 't2'
    await a.db.todos.put({ id: 2, title: 'after the expiry' })
    await a.sync.flush()
    expect(refused).toEqual(['t1'])
    expect(server.value('todos', 2)).toEqual({ id: 2, title: 'after the expiry' })
    expect(a.errors).toEqual([])
    expect(a.sync.status).toMatchObject({ state: 'idle', outbox: 0 })
  })

  it('credentials refused twice make the state unauthorized; sync goes on by itself once headers() returns new ones', async () => {
    const server = createSyncServer()
    const valid = new Set(['t1'])
    guarded(server, valid)
    let token = 't1'
    const a = await openClient({ url: `${BASE}/a`, headers: () => Promise.resolve({ authorization: token }) })
    await a.db.todos.put({ id: 1, title: 'one' })
    await a.sync.flush()
    // Revoked; the app's headers() keeps returning it for a while.
    valid.clear()
    await a.db.todos.put({ id: 2, title: 'written while refused' })
    await until(() => a.sync.status.state === 'unauthorized', { what: 'the unauthorized state' })
    expect(a.errors.at(-1)).toMatchObject({ reason: 'unauthorized', status: 401, retrying: false })
    expect(a.sync.status.outbox).toBe(1)
    await expect(a.sync.flush()).rejects.toMatchObject({ reason: 'unauthorized' })
    // New credentials: no resume() needed.
    valid.add('t2')
    token = 't2'
    await until(() => server.value('todos', 2) !== undefined, { what: 'the push with new credentials' })
    await until(() => a.sync.status.state === 'idle' && a.sync.status.outbox === 0)
    expect(server.value('todos', 2)).toEqual({ id: 2, title: 'written while refused' })
  })
})

describe('status', () => {
  it.each([
    ['a stream', stream],
    ['polling', 'poll'],
  ] as const)(
    'a server that cannot be reached shows offline whatever the outbox holds, with one console line per outage (%s)',
    async (_mode, pull) => {
      const server = createSyncServer()
      let down = false
      mock.use(
        http.all(`${BASE}/:client/:route`, ({ request }) => (down ? HttpResponse.error() : server.handle(request))),
      )
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
      // A read-only client, with no onError handler: the console is its witness.
      const db = new Dexie(`life-${Date.now()}`)
      db.version(1).stores({ todos: 'id' })
      const feed = changecast(db, {
        sync: httpSync({ url: `${BASE}/a`, pull, interval: 20, backoff: { base: 5, cap: 20 } }),
      })
      await db.open()
      try {
        const sync = feed.sync!
        await sync.flush()
        await until(() => sync.status.state === 'idle' && sync.status.lastContactAt !== undefined)
        const contact = sync.status.lastContactAt!
        down = true
        server.restart()
        await until(() => sync.status.state === 'offline', { what: 'offline' })
        expect(sync.status.outbox).toBe(0)
        // While the server is away the status never says idle (rounds with nothing to send included).
        const states: string[] = []
        const off = sync.subscribe(() => states.push(sync.status.state))
        // Several failed reconnections, one line.
        const failures = () => warn.mock.calls.filter(([text]) => /Could not reach/.test(String(text))).length
        await new Promise((resolve) => setTimeout(resolve, 150))
        off()
        expect(failures()).toBe(1)
        expect(states).not.toContain('idle')
        down = false
        await until(() => sync.status.state === 'idle', { what: 'idle again' })
        expect(sync.status.lastContactAt).toBeGreaterThan(contact)
        // A new outage is shown again.
        down = true
        server.restart()
        await until(() => failures() === 2, { what: 'the second outage on the console' })
        down = false
      } finally {
        feed.close()
        db.close()
        await Dexie.delete(db.name)
      }
    },
  )
})

describe('rejections', () => {
  it('a refused write says what was refused: a code, the reason, the changes as sent, and the server value', async () => {
    const server = createSyncServer({
      reject: (change) =>
        change.type !== 'delete' && (change.value as { title?: string }).title === ''
          ? { code: 'invalid', reason: 'title must not be empty' }
          : undefined,
    })
    mock.use(http.all(`${BASE}/:client/:route`, ({ request }) => server.handle(request)))
    const a = await openClient({ url: `${BASE}/a` })
    await a.db.todos.put({ id: 7, title: 'Buy milk' })
    await a.sync.flush()
    await a.db.transaction('rw', a.db.todos, async () => {
      await a.db.todos.put({ id: 7, title: '' })
      await a.db.todos.put({ id: 8, title: 'new' })
    })
    await a.sync.flush()
    const expected = {
      rev: 2,
      code: 'invalid',
      reason: 'title must not be empty',
      changes: [
        { type: 'update', table: 'todos', key: 7, value: { id: 7, title: '' } },
        { type: 'create', table: 'todos', key: 8, value: { id: 8, title: 'new' } },
      ],
      current: [
        { table: 'todos', key: 7, value: { id: 7, title: 'Buy milk' } },
        { table: 'todos', key: 8 },
      ],
    }
    expect(a.rejections).toEqual([expect.objectContaining(expected)])
    expect(await a.sync.rejections()).toEqual([expect.objectContaining(expected)])
    // The entities hold the server's values again.
    expect(await a.db.todos.toArray()).toEqual([{ id: 7, title: 'Buy milk' }])
    // A server that gives no code: rejected.
    server.configure({ reject: () => 'no' })
    await a.db.todos.put({ id: 9, title: 'x' })
    await a.sync.flush()
    expect(a.rejections[1]).toMatchObject({ code: 'rejected', reason: 'no' })
  })
})

describe('a server restored from a backup, or its log recreated', () => {
  for (const how of ['restored from an older backup', 'log recreated (new epoch)'] as const) {
    it(`${how}: every client ends on its state, unanswered writes are pushed again, and lost acknowledged commits are in the inbox`, async () => {
      const server = createSyncServer()
      const offline = new Set<string>()
      mock.use(
        http.all(`${BASE}/:client/:route`, ({ request, params }) =>
          offline.has(String(params.client)) ? HttpResponse.error() : server.handle(request),
        ),
      )
      const a = await openClient({ url: `${BASE}/a` })
      const b = await openClient({ url: `${BASE}/b` })
      await a.db.todos.put({ id: 1, title: 'kept' })
      await a.sync.flush()
      const backup = server.backup()
      await a.db.todos.put({ id: 2, title: 'lost' })
      await a.db.transaction('rw', a.db.todos, async () => {
        await a.db.todos.put({ id: 3, title: 'lost too' })
        await a.db.todos.update(1, { done: true })
      })
      await a.sync.flush()
      await b.sync.flush()
      expect((await b.db.todos.toArray()).map((todo) => todo.id)).toEqual([1, 2, 3])
      // Offline, A writes once more: unanswered when the server comes back.
      offline.add('a')
      await a.db.todos.put({ id: 4, title: 'unanswered' })
      if (how === 'restored from an older backup') server.restore(backup)
      else {
        server.reset()
        server.edit([{ type: 'create', table: 'todos', key: 10, value: { id: 10, title: 'new log' } }])
      }
      offline.delete('a')
      await a.sync.flush()
      await b.sync.flush()
      await a.sync.flush()
      const serverRows = server.rows('todos').map((row) => row.value)
      const restored = how === 'restored from an older backup'
      expect(serverRows).toEqual([
        ...(restored ? [{ id: 1, title: 'kept' }] : [{ id: 10, title: 'new log' }]),
        { id: 4, title: 'unanswered' },
      ])
      const byId = (rows: Array<{ id: number }>) => [...rows].sort((x, y) => x.id - y.id)
      expect(byId(await a.db.todos.toArray())).toEqual(byId(serverRows as Array<{ id: number }>))
      expect(byId(await b.db.todos.toArray())).toEqual(byId(serverRows as Array<{ id: number }>))
      // What the server lost of A's acknowledged commits: reported once, with the values, not sent again.
      const lost = await a.sync.rejections()
      expect(lost.map((rejection) => [rejection.rev, rejection.code])).toEqual([
        ...(restored ? [] : [[1, 'lost-on-server']]),
        [2, 'lost-on-server'],
        [3, 'lost-on-server'],
      ])
      expect(lost.find((rejection) => rejection.rev === 3)!.changes).toEqual([
        { type: 'create', table: 'todos', key: 3, value: { id: 3, title: 'lost too' } },
        { type: 'update', table: 'todos', key: 1, value: { id: 1, title: 'kept', done: true } },
      ])
      expect(a.errors.filter((error) => error.reason === 'server-reset')).toHaveLength(1)
      await a.sync.flush()
      expect(await a.sync.rejections()).toHaveLength(lost.length)
    })
  }
})

describe('signing out and switching users', () => {
  /** A server where each user reads and writes only their own rows (scope `user:{owner}`), and the token names the user. */
  function twoUsers() {
    const server = createSyncServer({
      principal: (request) => request.headers.get('authorization')?.replace(/^Bearer /, '') || undefined,
      scopeOf: ({ value }) => `user:${(value as { owner: string }).owner}`,
      scopes: (request) => {
        const user = request.headers.get('authorization')?.replace(/^Bearer /, '')
        return { read: [`user:${user}`] }
      },
    })
    const offline = { on: false }
    const seen: string[] = []
    mock.use(
      http.all(`${BASE}/:client/:route`, async ({ request }) => {
        if (offline.on) return HttpResponse.error()
        if (request.method === 'POST')
          seen.push(`${request.headers.get('authorization')} ${await request.clone().text()}`)
        return server.handle(request)
      }),
    )
    return { server, offline, seen }
  }
  const todo = (id: number, title: string, owner: string) => ({ id, title, owner }) as Todo

  it('regression: after a sign-out, a server restored from a backup had the emptied changelog row reported as a lost commit with no changes', async () => {
    const { server } = twoUsers()
    let token = 'bob'
    const a = await openClient({ url: `${BASE}/a`, headers: () => ({ authorization: `Bearer ${token}` }) })
    await a.db.todos.put(todo(1, 'B’s task', 'bob'))
    await a.sync.flush()
    await a.sync.signOut()
    token = 'alice'
    await until(() => a.sync.status.state === 'idle', { what: 'alice signed in' })
    await a.db.todos.put(todo(2, 'kept', 'alice'))
    await a.sync.flush()
    const backup = server.backup()
    await a.db.todos.put(todo(3, 'lost', 'alice'))
    await a.sync.flush()
    server.restore(backup)
    await a.sync.flush()
    await a.sync.flush()
    expect(await a.db.todos.toArray()).toEqual([todo(2, 'kept', 'alice')])
    // Only alice's lost commit, with what it wrote: the row left of bob's commit holds nothing.
    expect((await a.sync.rejections()).map((rejection) => [rejection.code, rejection.changes])).toEqual([
      ['lost-on-server', [{ type: 'create', table: 'todos', key: 3, value: todo(3, 'lost', 'alice') }]],
    ])
  })

  it('A signs out and B signs in: B never sees a row of A, A’s pending write is not pushed as B, and is pushed when A signs in again', async () => {
    const { server, offline, seen } = twoUsers()
    server.edit([{ type: 'create', table: 'todos', key: 100, value: todo(100, 'B’s own', 'bob') }])
    let token = 'alice'
    const a = await openClient({ url: `${BASE}/a`, headers: () => ({ authorization: `Bearer ${token}` }) })
    await a.db.todos.put(todo(1, 'A’s private task', 'alice'))
    await a.sync.flush()
    // Offline, A writes once more, then signs out: that write is A's, unanswered.
    offline.on = true
    await a.db.todos.put(todo(2, 'A’s unsent task', 'alice'))
    const unsent = (await a.feed.since(0)).at(-1)!.rev
    const removals = a.events.length
    await a.sync.signOut()
    // At once, nothing of A is left to read: not the rows, not the changelog's values.
    expect(await a.db.todos.toArray()).toEqual([])
    expect(a.events.slice(removals).map((event) => [event.type, event.key, event.removed])).toEqual([
      ['delete', 1, true],
      ['delete', 2, true],
    ])
    expect(JSON.stringify(await a.db.table('_changecast_log').toArray())).not.toMatch(/A’s/)
    expect(a.sync.status).toMatchObject({ outbox: 0, rejections: 0 })
    await until(() => a.sync.status.state === 'signed-out', { what: 'the signed-out state' })
    // A's write is not answered while it is held.
    let receipt: unknown
    void a.sync.settled(unsent).then((answer) => (receipt = answer))
    // B signs in (same profile, same database).
    token = 'bob'
    offline.on = false
    await until(() => a.sync.status.serverRev > 0, { what: 'B’s snapshot' })
    await a.sync.flush()
    expect(await a.db.todos.toArray()).toEqual([todo(100, 'B’s own', 'bob')])
    await a.db.todos.put(todo(101, 'B’s new task', 'bob'))
    await a.sync.flush()
    expect(server.value('todos', 101)).toEqual(todo(101, 'B’s new task', 'bob'))
    // A's write went nowhere: never in a request made with B's token.
    expect(server.value('todos', 2)).toBeUndefined()
    expect(seen.filter((line) => line.startsWith('Bearer bob')).join()).not.toMatch(/A’s/)
    expect(JSON.stringify(await a.db.todos.toArray())).not.toMatch(/A’s/)
    expect(receipt).toBeUndefined()
    // B signs out; A signs in again: A's unsent write comes back and is pushed, as A.
    await a.sync.signOut()
    expect(await a.db.todos.toArray()).toEqual([])
    token = 'alice'
    await until(() => server.value('todos', 2) !== undefined, { what: 'A’s held write on the server' })
    expect(seen.filter((line) => /A’s unsent/.test(line)).every((line) => line.startsWith('Bearer alice'))).toBe(true)
    await a.sync.flush()
    const byId = (rows: Todo[]) => [...rows].sort((x, y) => x.id - y.id)
    expect(byId(await a.db.todos.toArray())).toEqual([
      todo(1, 'A’s private task', 'alice'),
      todo(2, 'A’s unsent task', 'alice'),
    ])
    expect(await a.sync.settled(unsent)).toEqual({ rev: unsent, status: 'acked' })
    // Once each: the held write was not pushed twice.
    expect(server.batches.filter((batch) => batch.changes.some((change) => change.key === 2))).toHaveLength(1)
    expect(a.errors.filter((error) => error.reason !== 'network')).toEqual([])
  })

  it('another user’s token without signOut(): the state is principal-changed, nothing of theirs is applied, until signOut()', async () => {
    const { server } = twoUsers()
    server.edit([{ type: 'create', table: 'todos', key: 100, value: todo(100, 'B’s own', 'bob') }])
    let token = 'alice'
    const a = await openClient({ url: `${BASE}/a`, headers: () => ({ authorization: `Bearer ${token}` }) })
    await a.db.todos.put(todo(1, 'A’s task', 'alice'))
    await a.sync.flush()
    token = 'bob'
    await until(() => a.sync.status.state === 'principal-changed', { what: 'the principal-changed state' })
    expect(a.errors.at(-1)).toMatchObject({ reason: 'principal-changed', status: 403, retrying: false })
    await expect(a.sync.flush()).rejects.toMatchObject({ reason: 'principal-changed' })
    // Nothing hidden, nothing mixed: A's rows stay as they were, B's are not loaded.
    expect(await a.db.todos.toArray()).toEqual([todo(1, 'A’s task', 'alice')])
    await a.sync.signOut()
    await until(() => a.sync.status.serverRev > 0 && a.sync.status.state === 'idle', { what: 'B’s data' })
    expect(await a.db.todos.toArray()).toEqual([todo(100, 'B’s own', 'bob')])
  })

  it('a reply that names another user than the one whose data this device holds: principal-changed, nothing applied', async () => {
    const server = createSyncServer({ principal: () => 'alice' })
    // A server that binds no client ids, whose replies name someone else for a while.
    let named: string | undefined
    mock.use(
      http.all(`${BASE}/:client/:route`, async ({ request }) => {
        const response = await server.handle(request)
        if (!named || !response.headers.get('content-type')?.includes('json')) return response
        return HttpResponse.json({ ...((await response.json()) as object), principal: named })
      }),
    )
    const a = await openClient({ url: `${BASE}/a` })
    await a.db.todos.put({ id: 1, title: 'A’s task' })
    await a.sync.flush()
    named = 'mallory'
    server.edit([{ type: 'create', table: 'todos', key: 2, value: { id: 2, title: 'seen through another user' } }])
    await until(() => a.sync.status.state === 'principal-changed', { what: 'the principal-changed state' })
    expect(a.errors.at(-1)).toMatchObject({ reason: 'principal-changed', retrying: false })
    expect(await a.db.todos.toArray()).toEqual([{ id: 1, title: 'A’s task' }])
    // The server names A again: resume() goes on.
    named = undefined
    a.sync.resume()
    await a.sync.flush()
    expect(await a.db.todos.toArray()).toEqual([
      { id: 1, title: 'A’s task' },
      { id: 2, title: 'seen through another user' },
    ])
  })

  it('signOut({ discardPending: true }) and discardPending(): unsent writes are dropped, never pushed', async () => {
    const { server, offline } = twoUsers()
    const a = await openClient({ url: `${BASE}/a`, headers: { authorization: 'Bearer alice' } })
    await a.sync.flush()
    offline.on = true
    await a.db.todos.put(todo(1, 'dropped at sign-out', 'alice'))
    const first = a.events.at(-1)!.rev!
    await a.sync.signOut({ discardPending: true })
    expect(await a.sync.settled(first)).toMatchObject({ rev: first, status: 'dropped' })
    await a.db.todos.put(todo(2, 'held, then discarded', 'alice'))
    const second = a.events.at(-1)!.rev!
    await a.sync.signOut()
    await a.sync.discardPending()
    expect(await a.sync.settled(second)).toMatchObject({ rev: second, status: 'dropped' })
    // A signs in again: nothing that was discarded is pushed.
    offline.on = false
    expect(a.sync.status.state).toBe('signed-out')
    a.sync.resume()
    await a.sync.flush()
    expect(a.sync.status.state).toBe('idle')
    expect(server.batches).toEqual([])
    await expect(a.sync.signOut({ discardPending: 'yes' as never })).rejects.toThrow(/discardPending must be a boolean/)
  })

  it('signOut() in a tab that does not lead runs in the leader; every tab sees the rows go', async () => {
    const browser = installBrowserGlobals()
    try {
      const { server } = twoUsers()
      let token = 'alice'
      const headers = () => ({ authorization: `Bearer ${token}` })
      const leader = await openClient({ url: `${BASE}/a`, name: 'tabs-sign-out', headers })
      await until(() => leader.sync.status.leader)
      const follower = await openClient({ url: `${BASE}/a`, name: 'tabs-sign-out', headers })
      await until(() => follower.sync.status.state === 'idle')
      await follower.db.todos.put(todo(1, 'A’s task', 'alice'))
      await follower.sync.flush()
      await follower.sync.signOut()
      expect(await follower.db.todos.toArray()).toEqual([])
      await until(() => leader.events.some((event) => event.type === 'delete' && event.removed), {
        what: 'the removal in the leader',
      })
      await until(() => follower.sync.status.state === 'signed-out')
      token = 'bob'
      await until(() => leader.sync.status.state === 'idle' && leader.sync.status.serverRev > 0)
      expect(server.value('todos', 1)).toEqual(todo(1, 'A’s task', 'alice'))
      expect(await leader.db.todos.toArray()).toEqual([])
    } finally {
      await closeAll()
      browser.uninstall()
    }
  })
})
