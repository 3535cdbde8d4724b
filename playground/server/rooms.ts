// The playground's sync server: the real @changecast/server on PGlite, one per "room"
// (?room=… in the page URL) so that tests and demos do not see each other's data. The
// default room keeps its data in playground/.changecast across restarts; other rooms share
// one in-memory PGlite, each in a schema of its own. Faults (the panel's "cut the server
// off", latency, failures) come from @changecast/testing's withFaults.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { getRequestListener } from '@hono/node-server'
import { createSyncHandler, insecureNoAuth, openPGlite, type Database, type SyncHandler } from '@changecast/server'
import { withFaults, type FaultyHandler } from '@changecast/testing'

interface Room {
  sync: SyncHandler
  faulty: FaultyHandler
  listener: ReturnType<typeof getRequestListener>
  database: Database
  schema: string
}

/**
 * Rooms named `teams…` scope tasks by project: two users (`x-user: ann` or `ben`, sent by
 * pages opened with `?user=…`) each read and write their own projects and the shared one.
 */
export const TEAMS: Record<string, string[]> = {
  ann: ['shared', 'project:apollo', 'project:mercury'],
  ben: ['shared', 'project:zephyr', 'project:mercury'],
}
const TEAM_TASKS = [
  [101, 'project:apollo', 'Draft the launch plan'],
  [102, 'project:apollo', 'Book the test range'],
  [103, 'project:apollo', 'Review the checklist'],
  [201, 'project:zephyr', 'Pick the wind tunnel'],
  [202, 'project:zephyr', 'Order the sensors'],
  [203, 'project:zephyr', 'Write the flight log'],
  [301, 'project:mercury', 'Agree on the budget'],
  [302, 'project:mercury', 'Hire the crew'],
] as const

/** `edit.title` may be any JSON value: another client may store anything, and the playground must show it. */
type Control = { offline?: boolean; latency?: number; failureRate?: number; edit?: { key: number; title: unknown } }

/** A schema name for a room: readable, and distinct for distinct room names. */
function schemaOf(room: string): string {
  let hash = 2166136261
  for (const char of room) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619) >>> 0
  return `room_${room
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '_')
    .slice(0, 24)}_${hash.toString(36)}`
}

export function createRooms({ dataDir }: { dataDir: string }) {
  let onDisk: Promise<Database> | undefined
  let inMemory: Promise<Database> | undefined
  const rooms = new Map<string, Promise<Room>>()

  const open = async (name: string): Promise<Room> => {
    const persistent = name === 'default'
    const database = await (persistent ? (onDisk ??= openPGlite(dataDir)) : (inMemory ??= openPGlite()))
    const schema = persistent ? 'public' : schemaOf(name)
    const teams = name.startsWith('teams')
    const sync = createSyncHandler({
      database,
      schema,
      pollInterval: 500,
      ...(teams
        ? {
            authenticate: (request: Request) => {
              const user = request.headers.get('x-user') ?? ''
              return TEAMS[user] ? { id: user } : undefined
            },
            scopeOf: ({ table, value }) =>
              table === 'tasks' ? ((value as { project?: string }).project ?? 'shared') : 'shared',
            scopes: (principal) => ({ read: TEAMS[principal.id]! }),
          }
        : { authenticate: insecureNoAuth }),
    })
    await sync.ready
    if (teams && (await sync.read('tasks', 101)) === undefined) {
      await sync.write(
        TEAM_TASKS.map(([id, project, title]) => ({
          type: 'create' as const,
          table: 'tasks',
          key: id,
          value: { id, project, title, status: 'todo', updatedAt: Date.now() },
        })),
      )
    }
    const faulty = withFaults(sync)
    return { sync, faulty, listener: getRequestListener(faulty), database, schema }
  }
  const room = (name: string) => {
    let found = rooms.get(name)
    if (!found) {
      found = open(name)
      found.catch(() => rooms.delete(name))
      rooms.set(name, found)
    }
    return found
  }

  return {
    /** Serves `/{room}/push|pull|stream|snapshot|control`; anything else is left to `next`. */
    handle(request: IncomingMessage, response: ServerResponse, next: () => void): void {
      const match = /^\/([\w-]+)\/(push|pull|stream|snapshot|control)(\?.*)?$/.exec(request.url ?? '')
      if (!match) return next()
      const [, name, route, query = ''] = match
      room(name!)
        .then(
          async (found) => {
            if (route !== 'control') {
              request.url = `/${route}${query}`
              return found.listener(request, response)
            }
            const text = request.method === 'POST' ? await readText(request) : ''
            reply(response, 200, await control(found, request.method === 'POST' ? parseControl(text) : {}))
          },
          (error: Error) => reply(response, 503, { error: `the room's server could not start: ${error.message}` }),
        )
        .catch((error: Error) => reply(response, 400, { error: error.message }))
    },
    async close(): Promise<void> {
      for (const found of rooms.values()) await (await found.catch(() => undefined))?.sync.close()
      for (const database of [onDisk, inMemory]) await (await database)?.close()
    },
  }
}

async function readText(request: IncomingMessage): Promise<string> {
  let text = ''
  for await (const chunk of request) text += String(chunk)
  return text
}

function reply(response: ServerResponse, status: number, body: unknown) {
  if (response.headersSent) return void response.end()
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
    if (!Number.isInteger(key) || title === undefined) throw new Error('edit must be { key: integer, title }')
  }
  return body
}

/** Applies a control request; answers what the room's server holds. */
async function control({ sync, faulty, database, schema }: Room, change: Control) {
  if (change.offline !== undefined) faulty.configure({ dropRate: change.offline ? 1 : 0 })
  if (change.latency !== undefined) faulty.configure({ latency: change.latency })
  if (change.failureRate !== undefined) faulty.configure({ failureRate: change.failureRate, retryAfter: 1 })
  if (change.edit) {
    // Another user renames the task, or creates it when it does not exist: a backend write.
    const { key, title } = change.edit
    const existing = (await sync.read('tasks', key)) as object | undefined
    const value = { status: 'todo', ...existing, id: key, title, updatedAt: Date.now() }
    await sync.write(
      [
        existing
          ? { type: 'update', table: 'tasks', key, value, changes: { title, updatedAt: value.updatedAt } }
          : { type: 'create', table: 'tasks', key, value },
      ],
      { origin: 'another-user' },
    )
  }
  const txs = await database.query<{ tx: string }>(`select tx from "${schema}".changecast_batches order by rev`)
  const tasks = await database.query<{ value: string }>(
    `select value from "${schema}".changecast_entities where tbl = 'tasks' and value is not null order by rev`,
  )
  return {
    batches: txs.length,
    txs: txs.map((row) => row.tx),
    tasks: tasks.map((row) => JSON.parse(row.value) as unknown),
  }
}
