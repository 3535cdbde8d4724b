// The Node adapter: timeouts for slow clients, and the handler mounted in an existing Node
// server or Express app (before or after a body parser).
import { createServer, type Server } from 'node:http'
import { connect } from 'node:net'
import express from 'express'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createSyncHandler, insecureNoAuth, openPGlite, type Database, type SyncHandler } from '@changecast/server'
import { nodeListener, serve, type NodeServer } from '@changecast/server/node'
import { until } from '../../core/test/sync-helpers.js'

let database: Database
let sync: SyncHandler
const closers: Array<() => Promise<void>> = []
beforeEach(async () => {
  database = await openPGlite()
  sync = createSyncHandler({ database, authenticate: insecureNoAuth, basePath: '/sync', heartbeat: 50 })
  await sync.ready
})
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await sync.close()
  await database.close()
})

const listen = async (server: Server): Promise<string> => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  const { port } = server.address() as { port: number }
  return `http://127.0.0.1:${port}`
}
const served = async (options: Parameters<typeof serve>[1]): Promise<NodeServer> => {
  const server = await serve(sync, { port: 0, ...options })
  closers.push(() => server.close())
  return server
}
const pushBody = (clientId: string, title: string) =>
  JSON.stringify({
    v: 2,
    clientId,
    batches: [
      {
        rev: 1,
        tx: `${clientId}.1`,
        at: 1,
        changes: [{ type: 'create', table: 'todos', key: title, value: { title } }],
      },
    ],
  })
const push = (base: string, clientId: string, title: string) =>
  fetch(`${base}/sync/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: pushBody(clientId, title),
  })
const pulled = async (base: string) => {
  const reply = (await (await fetch(`${base}/sync/pull?v=2&since=0&clientId=reader`)).json()) as {
    batches: Array<{ changes: Array<{ key: string }> }>
  }
  return reply.batches.flatMap((batch) => batch.changes.map((change) => change.key))
}

/** A raw socket to `url`; resolves with what it received once the server closed it. */
function rawSocket(url: string, send: (socket: ReturnType<typeof connect>) => void): Promise<string> {
  const { port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => send(socket))
    let received = ''
    socket.on('data', (chunk) => (received += chunk.toString()))
    socket.on('close', () => resolve(received))
    socket.on('error', reject)
  })
}

describe('serve(): timeouts', () => {
  it('slow loris: a client that sends its headers too slowly is disconnected', async () => {
    const server = await served({ headersTimeout: 300, requestTimeout: 300 })
    let drip: ReturnType<typeof setInterval> | undefined
    const received = await rawSocket(server.url, (socket) => {
      socket.write('GET /sync/ HTTP/1.1\r\nHost: x\r\n')
      drip = setInterval(() => socket.write('X-a: b\r\n'), 50)
    })
    clearInterval(drip)
    expect(received).toMatch(/^HTTP\/1.1 408/)
  })

  it('a body sent too slowly is cut off with 408, and nothing is stored', async () => {
    const server = await served({ headersTimeout: 300, requestTimeout: 300 })
    const body = pushBody('slow', 'never')
    const received = await rawSocket(server.url, (socket) => {
      socket.write(
        `POST /sync/push HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 10)}`,
      )
    })
    expect(received).toMatch(/^HTTP\/1.1 408/)
    expect(await pulled(server.url)).toEqual([])
  })

  it('a stream is a reply, not a request: it stays open past requestTimeout, heartbeat after heartbeat', async () => {
    const server = await served({ headersTimeout: 100, requestTimeout: 100 })
    const response = await fetch(`${server.url}/sync/stream?v=2&since=0&clientId=watcher`)
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let text = ''
    // 50 ms between heartbeats: 20 of them span ten request timeouts (and ten timeout checks).
    while ((text.match(/: heartbeat/g) ?? []).length < 20) {
      const { done, value } = await reader.read()
      expect(done).toBe(false)
      text += decoder.decode(value)
    }
    await reader.cancel()
  })

  it('a stream is written to its socket once its headers are sent: a client that goes away is counted out, and close() ends it', async () => {
    const server = await served({})
    const open = async () => {
      const response = await fetch(`${server.url}/sync/stream?v=2&since=0&clientId=taken-${sync.streams}`)
      // Taken over: the body lasts until the connection closes.
      expect(response.headers.get('connection')).toBe('close')
      const reader = response.body!.getReader()
      expect(new TextDecoder().decode((await reader.read()).value)).toContain('event: hello')
      return reader
    }
    const first = await open()
    expect(sync.streams).toBe(1)
    await first.cancel()
    await until(() => sync.streams === 0, { what: 'the stream to be counted out' })
    const second = await open()
    const ended = (async () => {
      while (!(await second.read()).done);
    })()
    await sync.close()
    await ended
  })

  it('refuses timeouts that make no sense', () => {
    expect(() => serve(sync, { headersTimeout: 0 })).toThrow('headersTimeout must be positive')
    expect(() => serve(sync, { headersTimeout: 1000, requestTimeout: 10 })).toThrow('requestTimeout at least')
  })
})

describe('nodeListener(): mounted in an existing app', () => {
  it('plain Node: the app routes /sync/ to the handler and answers the rest itself', async () => {
    const listener = nodeListener(sync)
    const base = await listen(
      createServer((req, res) => (req.url?.startsWith('/sync/') ? void listener(req, res) : res.end('my app'))),
    )
    expect((await push(base, 'a', 'plain')).status).toBe(200)
    expect(await pulled(base)).toEqual(['plain'])
    expect(await (await fetch(`${base}/about`)).text()).toBe('my app')
  })

  it('Express, mounted before express.json(): the handler sees the full path and its own body', async () => {
    const app = express()
    app.use('/sync', nodeListener(sync))
    app.use(express.json())
    app.post('/api/echo', (req, res) => void res.json(req.body))
    const base = await listen(createServer(app))
    expect((await push(base, 'a', 'before')).status).toBe(200)
    expect(await pulled(base)).toEqual(['before'])
    const echo = await fetch(`${base}/api/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"x":1}',
    })
    expect(await echo.json()).toEqual({ x: 1 })
  })

  it('Express, mounted after express.json() or express.raw(): the body the parser kept is passed on', async () => {
    for (const parser of [express.json(), express.raw({ type: '*/*' }), express.text({ type: '*/*' })]) {
      const app = express()
      app.use(parser)
      app.use('/sync', nodeListener(sync))
      const base = await listen(createServer(app))
      const title = `after-${closers.length}`
      const response = await push(base, `c${closers.length}`, title)
      expect(response.status).toBe(200)
      expect(await pulled(base)).toContain(title)
    }
  })

  it('a body read by something in front that kept nothing: 400 that says to mount the handler first (not 500)', async () => {
    const app = express()
    app.use((req, _res, next) => {
      req.on('data', () => undefined)
      req.on('end', () => next())
    })
    app.use('/sync', nodeListener(sync))
    const base = await listen(createServer(app))
    const response = await push(base, 'eaten', 'lost')
    expect(response.status).toBe(400)
    expect(((await response.json()) as { error: string }).error).toBe(
      'the body was already read by a body parser in front of the sync handler: mount the handler before express.json() (or any body parser)',
    )
    expect(await pulled(base)).toEqual([])
  })

  it('the web handler itself: a Request whose body was read, or announced but empty, is 400 with the same message', async () => {
    const request = () =>
      new Request('http://sync.test/sync/push', {
        method: 'POST',
        body: pushBody('web', 'read'),
        headers: { 'content-type': 'application/json' },
      })
    const read = request()
    await read.text()
    const empty = new Request('http://sync.test/sync/push', {
      method: 'POST',
      body: '',
      headers: { 'content-length': '120' },
    })
    for (const response of [await sync(read), await sync(empty)]) {
      expect(response.status).toBe(400)
      expect(((await response.json()) as { error: string }).error).toMatch(
        /^the body was already read by a body parser/,
      )
    }
    expect((await sync(request())).status).toBe(200)
  })
})
