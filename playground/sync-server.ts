// The playground's sync server: @changecast/testing's in-memory server, served by the Vite
// dev server so that every tab talks to the same one. Each "room" (?room=… in the page
// URL) is a separate server, so tests and demos do not see each other's data.
import type { Connect, Plugin } from 'vite'
import { createSyncServer, type SyncServer } from '../packages/testing/src/sync-server.js'
import { syncMiddleware } from '../packages/testing/src/node-middleware.js'

type Control = { offline?: boolean; latency?: number; failureRate?: number; edit?: { key: number; title: string } }

export function playgroundSyncServer(): Plugin {
  const rooms = new Map<string, SyncServer>()
  const room = (name: string) => {
    let server = rooms.get(name)
    if (!server) {
      server = createSyncServer()
      rooms.set(name, server)
    }
    return server
  }
  const api: Connect.NextHandleFunction = (request, response, next) => {
    const match = /^\/([\w-]+)\/(push|pull|stream|control)(\?.*)?$/.exec(request.url ?? '')
    if (!match) return next()
    const server = room(match[1]!)
    if (match[2] !== 'control') {
      request.url = `/${match[2]}${match[3] ?? ''}`
      return syncMiddleware(server)(request, response)
    }
    void control(server, request).then((body) => {
      response.setHeader('content-type', 'application/json')
      response.end(JSON.stringify(body))
    })
  }
  return {
    name: 'changecast-playground-sync',
    configureServer(vite) {
      vite.middlewares.use('/api/sync', api)
    },
  }
}

async function control(server: SyncServer, request: Connect.IncomingMessage) {
  if (request.method === 'POST') {
    let text = ''
    for await (const chunk of request) text += String(chunk)
    const change = JSON.parse(text || '{}') as Control
    if (change.offline !== undefined) server.configure({ dropRate: change.offline ? 1 : 0 })
    if (change.latency !== undefined) server.configure({ latency: change.latency })
    if (change.failureRate !== undefined) server.configure({ failureRate: change.failureRate, retryAfter: 1 })
    if (change.edit) {
      // Another user renames the task, or creates it when it does not exist.
      const { key, title } = change.edit
      const existing = server.value('tasks', key) as object | undefined
      const value = { status: 'todo', ...existing, id: key, title, updatedAt: Date.now() }
      server.edit([
        existing
          ? { type: 'update', table: 'tasks', key, value, changes: { title, updatedAt: value.updatedAt } }
          : { type: 'create', table: 'tasks', key, value },
      ])
    }
  }
  return {
    batches: server.batches.length,
    txs: server.batches.map((batch) => batch.tx),
    tasks: server.rows('tasks').map((row) => row.value),
  }
}
