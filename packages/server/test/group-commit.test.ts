// Group commit: concurrent pushes are stored together, and still each per the protocol.
import { afterEach, describe, expect, it } from 'vitest'
import type { PullReply, PushReply } from '@changecast/core/sync'
import { PushQueue } from '../src/push-queue.js'
import type { PendingPush, PushOutcome } from '../src/store/push.js'
import { startServer, type TestServer } from './backends.js'

const body = (clientId: string, rev: number, tx = `tx-${clientId}-${rev}`) =>
  JSON.stringify({
    v: 2,
    clientId,
    batches: [
      { rev, tx, at: 1, changes: [{ type: 'update', table: 'todos', key: 1, value: { id: 1, by: clientId } }] },
    ],
  })

for (const backend of ['pglite', 'postgres'] as const) {
  describe(`group commit on ${backend}`, () => {
    let server: TestServer | undefined
    afterEach(async () => {
      await server?.close()
      server = undefined
    })
    const push = (text: string) => server!.handle(new Request('http://sync.test/push', { method: 'POST', body: text }))

    it('stores concurrent pushes once each, with contiguous revisions, repeats included', async () => {
      server = await startServer(backend)
      const requests = [
        ...Array.from({ length: 20 }, (_, i) => body(`client-${i}`, 1)),
        // A push sent again while the first is still waiting (its reply was lost).
        body('client-3', 1),
        body('client-3', 1),
      ]
      const replies = await Promise.all(requests.map(async (text) => (await (await push(text)).json()) as PushReply))
      expect(replies.every((reply) => reply.acked.length === 1)).toBe(true)
      expect(replies[21]!.acked[0]!.serverRev).toBe(replies[3]!.acked[0]!.serverRev)
      const pulled = (await (
        await server.handle(new Request('http://sync.test/pull?v=2&since=0&clientId=o'))
      ).json()) as PullReply
      expect(pulled.batches.map((batch) => batch.rev)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
      expect(new Set(pulled.batches.map((batch) => batch.origin)).size).toBe(20)
    })

    it('refuses only the conflicting request of a group (409); the others are stored', async () => {
      server = await startServer(backend)
      const statuses = await Promise.all(
        [body('x', 1, 'first'), body('x', 1, 'second'), body('y', 1), body('z', 1)].map(
          async (text) => (await push(text)).status,
        ),
      )
      expect(statuses.slice(2)).toEqual([200, 200])
      expect(statuses.slice(0, 2).sort()).toEqual([200, 409])
      const pulled = (await (
        await server.handle(new Request('http://sync.test/pull?v=2&since=0&clientId=o'))
      ).json()) as PullReply
      expect(pulled.batches.map((batch) => batch.origin).sort()).toEqual(['x', 'y', 'z'])
    })
  })
}

describe('PushQueue', () => {
  const request = (clientId: string): PendingPush => ({ clientId, decided: [], access: {} })
  const ok = (): PushOutcome => ({ reply: { epoch: 'e', acked: [], rejected: [] }, appended: 0 })

  it('groups what arrives together, and what arrives while a transaction runs, in arrival order', async () => {
    const groups: string[][] = []
    const queue = new PushQueue(async (requests) => {
      groups.push(requests.map((r) => r.clientId))
      await new Promise((resolve) => setTimeout(resolve, 20))
      return requests.map(ok)
    })
    const first = ['a', 'b'].map((id) => queue.push(request(id), 10))
    await new Promise((resolve) => setTimeout(resolve, 10))
    const second = ['c', 'd', 'e'].map((id) => queue.push(request(id), 10))
    await Promise.all([...first, ...second])
    expect(groups).toEqual([
      ['a', 'b'],
      ['c', 'd', 'e'],
    ])
  })

  it('tries a failed group again request by request: one failure fails only its own request', async () => {
    const queue = new PushQueue(async (requests) => {
      await new Promise((resolve) => setTimeout(resolve, 5))
      if (requests.some((r) => r.clientId === 'poison')) throw new Error('the database refused it')
      return requests.map(ok)
    })
    const results = await Promise.allSettled(['first', 'a', 'poison', 'b'].map((id) => queue.push(request(id), 10)))
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled'])
  })
})
