// The sync protocol (docs/protocol.md) as raw requests: every server implementation runs it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { readEvents, type PullReply, type PushReply, type ServerEvent } from '@changecast/core/sync'
import { startServer, type Backend, type TestServer } from './backends.js'

const BASE = 'http://sync.test'
const change = (key: unknown, title: string) => ({ type: 'create', table: 'todos', key, value: { id: key, title } })
const batch = (rev: number, title = `t${rev}`, key: unknown = rev) => ({
  rev,
  tx: `tx-${rev}-${title}`,
  at: 1,
  changes: [change(key, title)],
})

export function protocolSuite(backend: Backend): void {
  describe(`protocol 2 against the ${backend} server`, () => {
    let server: TestServer
    beforeEach(async () => {
      server = await startServer(backend)
    })
    afterEach(async () => {
      await server.close()
    })

    const push = (body: unknown, raw?: string) =>
      server.handle(
        new Request(`${BASE}/push`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: raw ?? JSON.stringify(body),
        }),
      )
    const pushOk = async (clientId: string, batches: unknown[]) => {
      const response = await push({ v: 2, clientId, batches })
      expect(response.status).toBe(200)
      return (await response.json()) as PushReply
    }
    const pull = async (query: string) => {
      const response = await server.handle(new Request(`${BASE}/pull?v=2&${query}`))
      expect(response.status).toBe(200)
      return (await response.json()) as PullReply
    }

    it('acks a new batch with the next server revision, and a repeat of it with the same revision', async () => {
      const first = await pushOk('a', [batch(1), batch(2)])
      expect(first.acked).toEqual([
        { rev: 1, serverRev: 1 },
        { rev: 2, serverRev: 2 },
      ])
      expect(typeof first.epoch).toBe('string')
      const again = await pushOk('a', [batch(2), batch(3)])
      expect(again.acked).toEqual([
        { rev: 2, serverRev: 2 },
        { rev: 3, serverRev: 3 },
      ])
      expect(again.epoch).toBe(first.epoch)
      expect((await pull('since=0&clientId=b')).batches.map((b) => b.rev)).toEqual([1, 2, 3])
    })

    it('takes empty lists: a push of no batches, a batch with no changes (acked, and acked again the same), a pull with nothing new', async () => {
      expect(await pushOk('a', [])).toMatchObject({ acked: [], rejected: [] })
      const empty = { rev: 1, tx: 'tx-empty', at: 1, changes: [] }
      const first = await pushOk('a', [empty])
      expect(first.acked).toEqual([{ rev: 1, serverRev: expect.any(Number) as number }])
      expect((await pushOk('a', [empty])).acked).toEqual(first.acked)
      // Nobody receives a batch that changes nothing.
      const reply = await pull('since=0&clientId=b')
      expect(reply.batches.filter((b) => b.changes.length === 0)).toEqual([])
      expect(reply.more).toBe(false)
      expect((await pull(`since=${reply.upTo}&clientId=b`)).batches).toEqual([])
    })

    it('answers a confirming push with what it accepted before (acked) and unknown for the rest, and stores nothing', async () => {
      await pushOk('a', [batch(1), batch(2, 'second', 7)])
      const response = await push({ v: 2, clientId: 'a', confirm: true, batches: [batch(1), batch(3, 'never', 8)] })
      expect(response.status).toBe(200)
      const reply = (await response.json()) as PushReply
      expect(reply.acked).toEqual([{ rev: 1, serverRev: 1 }])
      expect(reply.rejected).toEqual([
        expect.objectContaining({ rev: 3, code: 'unknown', serverRev: 2, current: [{ table: 'todos', key: 8 }] }),
      ])
      expect((await pull('since=0&clientId=b')).batches.map((b) => b.rev)).toEqual([1, 2])
      // Not remembered either: sent as an ordinary push later, it is accepted.
      expect((await pushOk('a', [batch(3, 'never', 8)])).acked).toEqual([{ rev: 3, serverRev: 3 }])
      // confirm must be a boolean.
      expect((await push({ v: 2, clientId: 'a', confirm: 'yes', batches: [] })).status).toBe(400)
    })

    it('refuses a rev reused with another transaction (409), and stores nothing of that request', async () => {
      await pushOk('a', [batch(1)])
      const response = await push({ v: 2, clientId: 'a', batches: [batch(2), { ...batch(1), tx: 'another' }] })
      expect(response.status).toBe(409)
      expect(((await response.json()) as { error: string }).error).toMatch(/already used by another transaction/)
      expect((await pull('since=0&clientId=b')).batches).toHaveLength(1)
    })

    it('rejects a refused batch with the state as of the batches before it in the same request, and does not remember the refusal', async () => {
      await pushOk('a', [batch(1, 'first', 7)])
      const reply = await pushOk('a', [batch(2, 'second', 7), batch(3, 'refused', 7), batch(4, 'refused', 8)])
      expect(reply.acked).toEqual([{ rev: 2, serverRev: 2 }])
      // A code is optional (the servers under test give one, or not).
      expect(reply.rejected).toEqual([
        expect.objectContaining({
          rev: 3,
          reason: expect.any(String),
          serverRev: 2,
          current: [{ table: 'todos', key: 7, value: { id: 7, title: 'second' } }],
        }),
        expect.objectContaining({
          rev: 4,
          reason: expect.any(String),
          serverRev: 2,
          current: [{ table: 'todos', key: 8 }],
        }),
      ])
      // Sent again (now acceptable), a refused rev is evaluated again.
      const retried = await pushOk('a', [{ ...batch(3, 'fine', 7), tx: 'tx-3-refused' }])
      expect(retried.acked).toEqual([{ rev: 3, serverRev: 3 }])
    })

    it("pulls other clients' batches after since, leaves out the asker's own, and covers them with upTo", async () => {
      await pushOk('a', [batch(1)])
      await pushOk('b', [batch(1, 'b1', 10)])
      await pushOk('a', [batch(2)])
      const forB = await pull('since=0&clientId=b')
      expect(forB.batches.map((b) => [b.rev, b.origin])).toEqual([
        [1, 'a'],
        [3, 'a'],
      ])
      expect(forB).toMatchObject({ upTo: 3, more: false })
      const forA = await pull('since=1&clientId=a')
      expect(forA.batches.map((b) => b.rev).filter((rev) => rev !== 3)).toEqual([2])
      expect(forA.upTo).toBe(3)
      expect(forA.batches[0]!.changes[0]).toEqual({
        type: 'create',
        table: 'todos',
        key: 10,
        value: { id: 10, title: 'b1' },
      })
    })

    it('pages by limit, with more', async () => {
      await pushOk('a', [batch(1), batch(2), batch(3)])
      const page = await pull('since=0&limit=2&clientId=b')
      expect(page).toMatchObject({ upTo: 2, more: true })
      expect(page.batches.map((b) => b.rev)).toEqual([1, 2])
      expect((await pull('since=2&limit=2&clientId=b')).batches.map((b) => b.rev)).toEqual([3])
    })

    it("answers upTo below since when the log does not reach the client's position", async () => {
      await pushOk('a', [batch(1)])
      const reply = await pull('since=50&clientId=b')
      expect(reply.upTo).toBeLessThan(50)
      expect(reply.batches).toEqual([])
    })

    it('streams hello first, then the batches after since, then new ones as they commit', async () => {
      await pushOk('a', [batch(1), batch(2)])
      const controller = new AbortController()
      const response = await server.handle(
        new Request(`${BASE}/stream?v=2&since=1&clientId=b`, { signal: controller.signal }),
      )
      expect(response.headers.get('content-type')).toMatch(/text\/event-stream/)
      const events = readEvents(response.body!)
      const next = async (): Promise<ServerEvent> => (await events.next()).value as ServerEvent
      const hello = await next()
      expect(hello.event).toBe('hello')
      expect(JSON.parse(hello.data)).toMatchObject({ epoch: expect.any(String), head: 2 })
      const second = await next()
      expect([second.event, (JSON.parse(second.data) as { rev: number }).rev]).toEqual(['batch', 2])
      await pushOk('a', [batch(3)])
      await server.edit([{ type: 'update', table: 'todos', key: 1, value: { id: 1, title: 'edited' } }])
      const third = JSON.parse((await next()).data) as { rev: number }
      const fourth = JSON.parse((await next()).data) as { rev: number; origin: string }
      expect([third.rev, fourth.rev, fourth.origin]).toEqual([3, 4, 'another-user'])
      controller.abort()
      await events.return(undefined)
    })

    it('keeps one entity per key whatever the spelling of a typed key', async () => {
      await pushOk('a', [batch(1, 'one', { $date: '2026-11-28T10:00:00Z' })])
      const reply = await pushOk('a', [batch(2, 'refused', { $date: '2026-11-28T10:00:00.000Z' })])
      expect(reply.rejected[0]!.current).toEqual([
        {
          table: 'todos',
          key: { $date: '2026-11-28T10:00:00.000Z' },
          value: { id: { $date: '2026-11-28T10:00:00Z' }, title: 'one' },
        },
      ])
    })

    const malformed: Array<[string, unknown, string?]> = [
      ['a body that is not JSON', undefined, '{not json'],
      ['protocol version 1', { v: 1, clientId: 'a', batches: [] }],
      ['no client id', { v: 2, batches: [] }],
      ['a batch that is not an object', { v: 2, clientId: 'a', batches: [null] }],
      ['changes that are not a list', { v: 2, clientId: 'a', batches: [{ rev: 1, tx: 't', at: 1, changes: 5 }] }],
      ['a change with an invalid key', { v: 2, clientId: 'a', batches: [{ ...batch(1), changes: [change({}, 'x')] }] }],
      [
        'a create without a value',
        { v: 2, clientId: 'a', batches: [{ ...batch(1), changes: [{ type: 'create', table: 'todos', key: 1 }] }] },
      ],
      ['a rev twice in one request', { v: 2, clientId: 'a', batches: [batch(1), batch(1)] }],
      [
        'a value nested 100 levels deep',
        {
          v: 2,
          clientId: 'a',
          batches: [
            {
              ...batch(1),
              changes: [{ ...change(1, 'x'), value: JSON.parse('['.repeat(100) + ']'.repeat(100)) as unknown }],
            },
          ],
        },
      ],
    ]
    it.each(malformed)('answers %s with 400 and a message, and stores nothing', async (_name, body, raw) => {
      const response = await push(body, raw)
      expect(response.status).toBe(400)
      expect(((await response.json()) as { error: string }).error.length).toBeGreaterThan(5)
      expect((await pull('since=0&clientId=b')).batches).toEqual([])
    })

    it('answers a body over 8 MiB with 413, and bad pull and stream queries with 400', async () => {
      const big = await push(undefined, 'x'.repeat(9 * 1024 * 1024))
      expect(big.status).toBe(413)
      for (const query of [
        'v=1&since=0&clientId=a',
        'v=2&since=-1&clientId=a',
        'v=2&since=abc&clientId=a',
        'v=2&since=0&limit=0&clientId=a',
      ]) {
        expect((await server.handle(new Request(`${BASE}/pull?${query}`))).status).toBe(400)
      }
      expect((await server.handle(new Request(`${BASE}/stream?since=0&clientId=a`))).status).toBe(400)
    })

    it('no 5xx for what a database cannot index: a 10 kB key, a compound key of 1,000 numbers, a 10 kB table name, a NUL in clientId or tx are 400, nothing is stored, and the server goes on', async () => {
      const change = (table: string, key: unknown) => ({
        v: 2,
        clientId: 'limits',
        batches: [{ rev: 1, tx: 't1', at: 1, changes: [{ type: 'create', table, key, value: { id: 1 } }] }],
      })
      const cases: Array<[unknown, RegExp]> = [
        [change('todos', 'k'.repeat(10_000)), /a key has at most 512 characters as JSON/],
        [
          change(
            'todos',
            Array.from({ length: 1000 }, (_, i) => i),
          ),
          /a key has at most 512 characters/,
        ],
        [change('t'.repeat(10_000), 1), /a table name has at most 64 characters/],
        [change('to\u0000dos', 1), /a table name has at most 64 characters, none a control character/],
        [{ ...change('todos', 1), clientId: 'a\u0000b' }, /clientId must have 1–200 characters, none a control/],
        [
          { ...change('todos', 1), batches: [{ ...change('todos', 1).batches[0], tx: 't\u0000' }] },
          /the tx of batch 0 must have 1–200 characters/,
        ],
      ]
      for (const [body, message] of cases) {
        const response = await push(body)
        expect(response.status).toBe(400)
        expect(((await response.json()) as { error: string }).error).toMatch(message)
      }
      for (const route of ['pull?since=0&', 'stream?since=0&', 'snapshot?']) {
        const response = await server.handle(new Request(`${BASE}/${route}v=2&clientId=a%00b`))
        expect([route, response.status]).toEqual([route, 400])
      }
      expect((await pull('since=0&clientId=limits')).batches).toEqual([])
      expect((await pushOk('limits', [batch(1)])).acked).toHaveLength(1)
    })

    describe('merged updates (docs/protocol.md, "Merging updates")', () => {
      type Task = Record<string, unknown>
      const task = (rev: number, key: number, value: Task, extra: Record<string, unknown> = {}) => ({
        rev,
        tx: `tx-${rev}-${JSON.stringify(value)}-${JSON.stringify(extra)}`,
        at: 1,
        changes: [{ type: 'update', table: 'todos', key, value: { id: key, ...value }, ...extra }],
      })
      const create = (rev: number, key: number, value: Task) => ({
        rev,
        tx: `tx-create-${rev}-${key}`,
        at: 1,
        changes: [{ type: 'create', table: 'todos', key, value: { id: key, ...value } }],
      })
      const stored = async (key: number) => {
        const { batches } = await pull('since=0&clientId=reader&limit=1000')
        const changes = batches.flatMap((b) => b.changes).filter((c) => c.key === key)
        return changes.at(-1)?.value
      }

      it('applies the paths of concurrent updates of different fields to its own value: both edits survive, and the ack tells the writer the merged value', async () => {
        await pushOk('a', [create(1, 1, { title: 'Plan', status: 'open', owner: { name: 'Ann', city: 'Oslo' } })])
        // Both clients start from the same value and change different fields.
        const a = await pushOk('a', [
          task(2, 1, { title: 'Plan', status: 'done', owner: { name: 'Ann', city: 'Oslo' } }, { patch: ['status'] }),
        ])
        expect(a.acked).toEqual([{ rev: 2, serverRev: 2 }])
        const b = await pushOk('b', [
          task(
            1,
            1,
            { title: 'Plan v2', status: 'open', owner: { name: 'Ann', city: 'Bergen' } },
            {
              patch: ['title', 'owner.city'],
            },
          ),
        ])
        const merged = { id: 1, title: 'Plan v2', status: 'done', owner: { name: 'Ann', city: 'Bergen' } }
        expect(b.acked).toEqual([{ rev: 1, serverRev: 3, current: [{ table: 'todos', key: 1, value: merged }] }])
        expect(await stored(1)).toEqual(merged)
        // Given again (the reply was lost): acked again, with the server's value now.
        const again = await pushOk('b', [
          task(
            1,
            1,
            { title: 'Plan v2', status: 'open', owner: { name: 'Ann', city: 'Bergen' } },
            {
              patch: ['title', 'owner.city'],
            },
          ),
        ])
        expect(again.acked).toEqual([{ rev: 1, serverRev: 3, current: [{ table: 'todos', key: 1, value: merged }] }])
      })

      it('re-applies Dexie modifications to its own value: concurrent increments sum, list additions and removals all count, prefixes are replaced', async () => {
        await pushOk('a', [create(1, 1, { votes: 0, tags: ['b'], path: 'docs/a.md' })])
        const plusOne = (rev: number) =>
          task(rev, 1, { votes: 1, tags: ['b'], path: 'docs/a.md' }, { patch: [], ops: { votes: { add: 1 } } })
        await pushOk('a', [plusOne(2), plusOne(3)])
        await pushOk('b', [plusOne(1), plusOne(2)])
        await pushOk('c', [
          task(
            1,
            1,
            {},
            { patch: [], ops: { tags: { add: ['a', 'c'] }, path: { replacePrefix: ['docs/', 'archive/'] } } },
          ),
        ])
        await pushOk('d', [task(1, 1, {}, { patch: [], ops: { tags: { remove: ['b'] }, votes: { remove: 1 } } })])
        expect(await stored(1)).toEqual({ id: 1, votes: 3, tags: ['a', 'c'], path: 'archive/a.md' })
      })

      it('removes a field a patch names and the value lacks, and makes the objects a nested path needs', async () => {
        await pushOk('a', [create(1, 1, { title: 'x', note: 'old' })])
        await pushOk('a', [task(2, 1, { title: 'x', meta: { color: 'red' } }, { patch: ['note', 'meta.color'] })])
        expect(await stored(1)).toEqual({ id: 1, title: 'x', meta: { color: 'red' } })
      })

      it('rejects an update of an entity it no longer has (gone), and one that does not fit its value (unmergeable), with current', async () => {
        await pushOk('a', [create(1, 1, { title: 'x', votes: 'many', owner: 'Ann' })])
        const gone = await pushOk('a', [task(2, 2, { title: 'y' }, { patch: ['title'] })])
        expect(gone.rejected).toEqual([
          expect.objectContaining({ rev: 2, code: 'gone', current: [{ table: 'todos', key: 2 }] }),
        ])
        const current = [{ table: 'todos', key: 1, value: { id: 1, title: 'x', votes: 'many', owner: 'Ann' } }]
        const number = await pushOk('a', [task(2, 1, { votes: 1 }, { patch: [], ops: { votes: { add: 1 } } })])
        expect(number.rejected).toEqual([expect.objectContaining({ rev: 2, code: 'unmergeable', current })])
        expect(number.rejected[0]!.reason).toMatch(/votes is not a number/)
        const path = await pushOk('a', [task(2, 1, { owner: { city: 'Oslo' } }, { patch: ['owner.city'] })])
        expect(path.rejected).toEqual([expect.objectContaining({ rev: 2, code: 'unmergeable', current })])
        // Nothing was stored, and the rev may be accepted later.
        expect(await stored(1)).toEqual(current[0]!.value)
        expect((await pushOk('a', [task(2, 1, { title: 'z' }, { patch: ['title'] })])).acked).toHaveLength(1)
      })

      it('a patch after a create in one batch merges into it; a patch after a delete is gone', async () => {
        const both = {
          rev: 1,
          tx: 'tx-both',
          at: 1,
          changes: [
            { type: 'create', table: 'todos', key: 5, value: { id: 5, title: 'a', n: 1 } },
            { type: 'update', table: 'todos', key: 5, value: { id: 5, n: 2 }, patch: ['n'] },
          ],
        }
        expect((await pushOk('a', [both])).acked).toHaveLength(1)
        expect(await stored(5)).toEqual({ id: 5, title: 'a', n: 2 })
        const after = {
          rev: 2,
          tx: 'tx-after',
          at: 1,
          changes: [
            { type: 'delete', table: 'todos', key: 5 },
            { type: 'update', table: 'todos', key: 5, value: { id: 5, n: 3 }, patch: ['n'] },
          ],
        }
        expect((await pushOk('a', [after])).rejected).toEqual([expect.objectContaining({ rev: 2, code: 'gone' })])
      })

      it('reviews the merged value: the rules see what would be stored, not what the client sent', async () => {
        await pushOk('a', [create(1, 1, { title: 'fine', done: false })])
        await server.edit([
          { type: 'update', table: 'todos', key: 1, value: { id: 1, title: 'refused' }, patch: ['title'] },
        ])
        const reply = await pushOk('b', [task(1, 1, { title: 'fine', done: true }, { patch: ['done'] })])
        expect(reply.rejected).toEqual([
          expect.objectContaining({
            rev: 1,
            reason: 'titles may not be refused',
            current: [expect.objectContaining({ value: { id: 1, title: 'refused', done: false } })],
          }),
        ])
      })

      it('a backend write can be a patch too', async () => {
        await pushOk('a', [create(1, 1, { title: 'x', votes: 1 })])
        await server.edit([
          {
            type: 'update',
            table: 'todos',
            key: 1,
            value: { id: 1, title: 'y' },
            patch: ['title'],
            ops: { votes: { add: 2 } },
          },
        ])
        expect(await stored(1)).toEqual({ id: 1, title: 'y', votes: 3 })
      })

      it('takes a patch whose paths could name two places (a property name with a dot) as a whole value', async () => {
        await pushOk('a', [create(1, 1, { title: 'x', 'a.b': 1, a: { b: 1 } })])
        const reply = await pushOk('a', [task(2, 1, { 'a.b': 2, a: { b: 1 } }, { patch: ['a.b'] })])
        expect(reply.acked).toEqual([{ rev: 2, serverRev: 2 }])
        expect(await stored(1)).toEqual({ id: 1, 'a.b': 2, a: { b: 1 } })
      })

      it('refuses a merge that would break the limits: nested deeper than 64 levels (unmergeable), or a batch over 4 MiB once merged (invalid)', async () => {
        await pushOk('a', [create(1, 1, { title: 'x', big: 'a'.repeat(3 * 1024 * 1024) })])
        const deep = `${'n.'.repeat(70)}end`
        const update = (rev: number, value: Task, extra: Record<string, unknown>) => ({
          rev,
          tx: `tx-limits-${rev}`,
          at: 1,
          changes: [{ type: 'update', table: 'todos', key: 1, value: { id: 1, ...value }, ...extra }],
        })
        // An operation's path makes the objects on its way: 70 of them.
        const nested = await pushOk('a', [update(2, {}, { patch: [], ops: { [deep]: { add: 1 } } })])
        expect(nested.rejected).toEqual([expect.objectContaining({ rev: 2, code: 'unmergeable' })])
        expect(nested.rejected[0]!.reason).toMatch(/deeper than 64 levels/)
        const large = await pushOk('a', [update(2, { more: 'b'.repeat(2 * 1024 * 1024) }, { patch: ['more'] })])
        expect(large.rejected).toEqual([expect.objectContaining({ rev: 2, code: 'invalid' })])
        expect(large.rejected[0]!.reason).toMatch(/over 4194304 bytes/)
        expect(((await stored(1)) as { more?: string }).more).toBeUndefined()
      })

      it('answers a malformed patch with 400 and stores nothing', async () => {
        const bad: Array<[Record<string, unknown>, RegExp]> = [
          [{ type: 'create', table: 'todos', key: 1, value: { id: 1 }, patch: ['a'] }, /only an update carries patch/],
          [
            { type: 'update', table: 'todos', key: 1, value: { id: 1 }, patch: 'a' },
            /patch must be a list of dotted paths/,
          ],
          [{ type: 'update', table: 'todos', key: 1, value: { id: 1 }, patch: ['a..b'] }, /patch must be a list/],
          [{ type: 'update', table: 'todos', key: 1, value: 7, patch: ['a'] }, /a patched value must be an object/],
          [
            { type: 'update', table: 'todos', key: 1, value: { id: 1 }, patch: [], ops: { n: { add: 'x' } } },
            /ops.n is not an operation/,
          ],
          [
            { type: 'update', table: 'todos', key: 1, value: { id: 1 }, patch: [], ops: { n: { add: 1, remove: 1 } } },
            /ops.n is not an operation/,
          ],
          [
            {
              type: 'update',
              table: 'todos',
              key: 1,
              value: { id: 1 },
              patch: [],
              ops: { n: { replacePrefix: ['a'] } },
            },
            /ops.n is not an operation/,
          ],
        ]
        for (const [change, message] of bad) {
          const response = await push({
            v: 2,
            clientId: 'a',
            batches: [{ rev: 1, tx: 'tx', at: 1, changes: [change] }],
          })
          expect(response.status).toBe(400)
          expect(((await response.json()) as { error: string }).error).toMatch(message)
        }
        expect((await pull('since=0&clientId=b')).batches).toEqual([])
      })
    })

    it('strict since: missing, empty, hexadecimal, exponent, fraction, signed or padded is 400 on pull and stream', async () => {
      for (const since of [undefined, '', '0x10', '1e3', '1.5', '+1', '-0', '01', ' 1', '9007199254740993']) {
        const query = `v=2&clientId=strict${since === undefined ? '' : `&since=${encodeURIComponent(since)}`}`
        for (const route of ['pull', 'stream']) {
          const response = await server.handle(new Request(`${BASE}/${route}?${query}`))
          expect([route, since, response.status]).toEqual([route, since, 400])
          expect(((await response.json()) as { error: string }).error).toMatch(/since must be a revision/)
        }
      }
      expect((await server.handle(new Request(`${BASE}/pull?v=2&clientId=strict&since=0`))).status).toBe(200)
    })
  })
}
