// The fan-out indexes streams by the scopes they read: a write asks again the scopes of the
// streams it reaches only (their principals' grants), and sends nothing to the others.
// Scopes that change still close streams: a lost scope before anything of it is sent, a
// gained one at the next heartbeat round.
import { afterEach, describe, expect, it } from 'vitest'
import { createSyncHandler, openPGlite, type SyncHandler } from '@changecast/server'
import { until } from '../../core/test/sync-helpers.js'

const STREAMS = 60
const SCOPES = 20

describe('a write wakes only the streams of its scope', () => {
  let sync: SyncHandler
  let grants: Map<string, string[]>
  let asked: string[]
  let streams: Array<{ user: string; text: () => string; ended: () => boolean; cancel: () => Promise<void> }>

  /** The server, and STREAMS streams on it; heartbeat rounds (which ask every stream's grants) every `heartbeat` ms. */
  const open = async (heartbeat: number) => {
    grants = new Map()
    asked = []
    sync = createSyncHandler({
      database: openPGlite(),
      authenticate: (request) => ({ id: request.headers.get('x-user')! }),
      scopeOf: ({ value }) => (value as { project: string }).project,
      scopes: ({ id }) => {
        asked.push(id)
        return { read: grants.get(id) ?? [] }
      },
      heartbeat,
      limits: { streamsPerPrincipal: 10 },
    })
    await sync.ready
    streams = []
    // User i reads project p(i mod SCOPES).
    for (let i = 0; i < STREAMS; i++) {
      const user = `user-${i}`
      grants.set(user, [`p${i % SCOPES}`])
      const response = await sync(
        new Request(`http://sync.test/stream?v=2&since=0&clientId=c${i}`, { headers: { 'x-user': user } }),
      )
      const reader = response.body!.getReader()
      let text = ''
      let ended = false
      void (async () => {
        for (;;) {
          const { value, done } = await reader.read()
          if (done) return void (ended = true)
          text += new TextDecoder().decode(value)
        }
      })()
      streams.push({ user, text: () => text, ended: () => ended, cancel: () => reader.cancel() })
    }
    await until(() => streams.every((stream) => stream.text().includes('event: hello')))
  }

  afterEach(async () => {
    for (const stream of streams) await stream.cancel().catch(() => undefined)
    await sync.close()
  })

  const write = (key: number, project: string) =>
    sync.write([{ type: 'update', table: 'tasks', key, value: { id: key, project } }])
  const readers = (project: string) => streams.filter((_, i) => `p${i % SCOPES}` === project)

  it('asks again the grants of the streams of the written scope only, and sends the batch to them only', async () => {
    await open(3_600_000)
    // Live first: a first write reaches p0's streams.
    await write(1, 'p0')
    await until(() => readers('p0').every((stream) => stream.text().includes('"rev":1,')))
    asked.length = 0
    const rev = await write(2, 'p7')
    await until(() => readers('p7').every((stream) => stream.text().includes(`"rev":${rev},`)))
    // The three streams of p7 were asked about; the 57 others were not, and received nothing.
    expect(asked.sort()).toEqual(
      readers('p7')
        .map((stream) => stream.user)
        .sort(),
    )
    for (const stream of streams) {
      if (!readers('p7').includes(stream)) expect(stream.text()).not.toContain(`"rev":${rev},`)
    }
  })

  it('a stream whose principal lost the scope is closed before the write is sent; one that gained a scope, at the next heartbeat', async () => {
    await open(100)
    const [loser] = readers('p3')
    grants.set(loser!.user, [])
    const rev = await write(3, 'p3')
    await until(() => loser!.ended())
    expect(loser!.text()).not.toContain(`"rev":${rev},`)

    const [gainer] = readers('p4')
    grants.set(gainer!.user, ['p4', 'p5'])
    await until(() => gainer!.ended(), { what: 'the heartbeat round to close the stream' })
    // The others stay open.
    expect(streams.filter((stream) => stream.ended())).toHaveLength(2)
  })
})
