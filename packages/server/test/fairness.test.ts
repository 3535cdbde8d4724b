// Fairness: one user's flood of streams or reads waits in its own queue or is answered 429,
// while other users go ahead (the numbers under load are in `pnpm bench:server`).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createSyncHandler, type Database, type SyncHandler } from '@changecast/server'
import { BusyError, Fairness } from '../src/fairness.js'
import { realDatabase } from './backends.js'

describe('Fairness', () => {
  it('caps the streams of one client and of one principal, and counts a closed stream out once', () => {
    const fairness = new Fairness({ streamsPerClient: 2, streamsPerPrincipal: 3 })
    const a1 = fairness.openStream('a', 'alice')
    fairness.openStream('a', 'alice')
    expect(() => fairness.openStream('a', 'alice')).toThrow(new BusyError('client a has 2 streams open already', 5))
    fairness.openStream('b', 'alice')
    expect(() => fairness.openStream('c', 'alice')).toThrow('this user has 3 streams open already')
    // Another principal is not counted against alice.
    fairness.openStream('d', 'bob')
    a1()
    a1()
    fairness.openStream('c', 'alice')
    expect(() => fairness.openStream('e', 'alice')).toThrow(BusyError)
  })

  it("runs a principal's reads a few at a time, in order, refuses beyond its queue, and never holds up another principal", async () => {
    const fairness = new Fairness({ readsPerPrincipal: 1, queuedReadsPerPrincipal: 1 })
    const order: string[] = []
    let release!: () => void
    const first = fairness.read('alice', async () => {
      order.push('alice 1')
      await new Promise<void>((resolve) => (release = resolve))
      return 1
    })
    const second = fairness.read('alice', () => Promise.resolve(order.push('alice 2')))
    await expect(fairness.read('alice', () => Promise.resolve(3))).rejects.toThrow(
      new BusyError('too many reads of this user at once', 1),
    )
    await fairness.read('bob', () => Promise.resolve(order.push('bob')))
    expect(order).toEqual(['alice 1', 'bob'])
    release()
    expect(await first).toBe(1)
    await second
    expect(order).toEqual(['alice 1', 'bob', 'alice 2'])
    // A failed read passes its turn on too.
    await expect(fairness.read('alice', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom')
    expect(await fairness.read('alice', () => Promise.resolve('after'))).toBe('after')
  })

  it('a long read pauses between its parts while a user with fewer requests under way is answered, and goes on after', async () => {
    const fairness = new Fairness()
    let endQuiet!: () => void
    const quiet = fairness.during('quiet', () => new Promise<void>((resolve) => (endQuiet = resolve)))
    let endNoisy!: () => void
    // The noisy user has two requests under way, the quiet one one.
    const noisy = Promise.all([
      fairness.during('noisy', () => new Promise<void>((resolve) => (endNoisy = resolve))),
      fairness.during('noisy', async () => {
        let paused = true
        const pace = fairness.pace('noisy', 60_000).then(() => (paused = false))
        // The quiet user never waits for the noisy one.
        await fairness.pace('quiet', 60_000)
        await new Promise((resolve) => setImmediate(resolve))
        expect(paused).toBe(true)
        endQuiet()
        await quiet
        await pace
        expect(paused).toBe(false)
      }),
    ])
    await vi.waitFor(() => expect(endQuiet).toBeDefined())
    await quiet
    endNoisy()
    await noisy
  })

  it('a paused read goes on after `most` ms even while others are answered (no one starves)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const fairness = new Fairness()
      let endQuiet!: () => void
      const quiet = fairness.during('quiet', () => new Promise<void>((resolve) => (endQuiet = resolve)))
      await fairness.during('noisy', async () => {
        await fairness.during('noisy', async () => {
          const pace = fairness.pace('noisy', 100)
          await vi.advanceTimersByTimeAsync(100)
          await pace
        })
      })
      endQuiet()
      await quiet
    } finally {
      vi.useRealTimers()
    }
  })

  it('refuses limits that are not integers', () => {
    expect(() => new Fairness({ streamsPerClient: 0 })).toThrow('limits.streamsPerClient must be a positive integer')
    expect(() => new Fairness({ queuedReadsPerPrincipal: -1 })).toThrow(
      'limits.queuedReadsPerPrincipal must be a non-negative integer',
    )
  })
})

for (const backend of ['pglite', 'postgres'] as const) {
  describe(`limits on the ${backend} server`, () => {
    let handler: SyncHandler
    let database: Database
    let closeDatabase: () => Promise<void>
    beforeEach(async () => {
      ;({ database, close: closeDatabase } = await realDatabase(backend))
      handler = createSyncHandler({
        database,
        authenticate: (request) => ({ id: request.headers.get('x-user') ?? 'nobody' }),
        limits: { streamsPerClient: 2, streamsPerPrincipal: 3, readsPerPrincipal: 1, queuedReadsPerPrincipal: 2 },
      })
      await handler.ready
    })
    afterEach(async () => {
      await handler.close()
      await closeDatabase()
    })
    const stream = (user: string, clientId: string) =>
      handler(new Request(`http://sync.test/stream?v=2&since=0&clientId=${clientId}`, { headers: { 'x-user': user } }))
    const pull = (user: string) =>
      handler(new Request(`http://sync.test/pull?v=2&since=0&clientId=${user}-c`, { headers: { 'x-user': user } }))

    it('streams beyond the cap of a client or a principal: 429 with Retry-After; a closed stream frees its place', async () => {
      const open = [await stream('alice', 'a'), await stream('alice', 'a')]
      expect(open.map((response) => response.status)).toEqual([200, 200])
      const third = await stream('alice', 'a')
      expect(third.status).toBe(429)
      expect(third.headers.get('retry-after')).toBe('5')
      expect(await third.json()).toEqual({ error: 'client a has 2 streams open already' })
      expect((await stream('alice', 'b')).status).toBe(200)
      expect((await stream('alice', 'c')).status).toBe(429)
      expect((await stream('bob', 'd')).status).toBe(200)
      await open[0]!.body!.cancel()
      expect((await stream('alice', 'a')).status).toBe(200)
    })

    it("one user's flood of pulls waits in its own queue (429 beyond it) while another user's pull is answered", async () => {
      // The noisy user's first pull is held inside its read (at the database) while the others arrive.
      let release!: () => void
      let reached!: () => void
      const inside = new Promise<void>((resolve) => (reached = resolve))
      const query = database.query.bind(database)
      let hold = true
      database.query = async (sql: string, params?: readonly unknown[]) => {
        if (hold && sql.includes('select epoch, head, horizon')) {
          hold = false
          reached()
          await new Promise<void>((resolve) => (release = resolve))
        }
        return query(sql, params)
      }
      const first = pull('noisy')
      await inside
      let settled = 0
      const flood = Array.from({ length: 11 }, () => pull('noisy').finally(() => settled++))
      // Two wait their turn; the other nine are told to come back.
      await vi.waitFor(() => expect(settled).toBe(9))
      const quiet = await pull('quiet')
      expect(quiet.status).toBe(200)
      release()
      const statuses = await Promise.all([first, ...flood].map(async (response) => (await response).status))
      expect(statuses.filter((status) => status === 200)).toHaveLength(3)
      expect(statuses.filter((status) => status === 429)).toHaveLength(9)
      const refused = await flood[10]!
      expect(refused.status).toBe(429)
      expect(refused.headers.get('retry-after')).toBe('1')
      expect(await refused.json()).toEqual({ error: 'too many reads of this user at once' })
      expect((await pull('noisy')).status).toBe(200)
    })
  })
}
