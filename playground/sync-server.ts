// The playground's sync server: @changecast/testing's in-memory server, served by the Vite
// dev server so that every tab talks to the same one. Each "room" (?room=… in the page
// URL) is a separate server, so tests and demos do not see each other's data.
import type { ServerResponse } from 'node:http'
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
    control(server, request).then(
      (body) => reply(response, 200, body),
      (error: unknown) => reply(response, 400, { error: error instanceof Error ? error.message : String(error) }),
    )
  }
  return {
    name: 'changecast-playground-sync',
    configureServer(vite) {
      vite.middlewares.use('/api/sync', api)
    },
  }
}

function reply(response: ServerResponse, status: number, body: unknown) {
  response.statusCode = status
  response.setHeader('content-type', 'application/json')
  response.end(JSON.stringify(body))
}

/** Reads and checks a control request; throws with what is wrong. */
function parseControl(text: string): Control {
  let body: unknown
  try {
    body = JSON.parse(text || '{}')
  } catch {
    throw new Error('the control body is not JSON')
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new Error('the control body must be an object')
  const { offline, latency, failureRate, edit } = body as Record<string, unknown>
  if (offline !== undefined && typeof offline !== 'boolean') throw new Error('offline must be a boolean')
  if (latency !== undefined && (typeof latency !== 'number' || latency < 0))
    throw new Error('latency must be a number ≥ 0')
  if (failureRate !== undefined && (typeof failureRate !== 'number' || failureRate < 0 || failureRate > 1))
    throw new Error('failureRate must be between 0 and 1')
  if (edit !== undefined) {
    const { key, title } = (edit ?? {}) as Record<string, unknown>
    if (!Number.isInteger(key) || typeof title !== 'string')
      throw new Error('edit must be { key: integer, title: string }')
  }
  return body
}

async function control(server: SyncServer, request: Connect.IncomingMessage) {
  if (request.method === 'POST') {
    let text = ''
    for await (const chunk of request) text += String(chunk)
    const change = parseControl(text)
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
