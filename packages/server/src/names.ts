/** The qualified names of the server's tables and its notification channel, in one schema. */
export interface Names {
  schema: string
  meta: string
  batches: string
  entities: string
  changes: string
  clients: string
  migrations: string
  /** The LISTEN/NOTIFY channel of this schema's log. */
  channel: string
}

/**
 * Names in `schema` (default `public`). A schema name is a plain lower-case identifier, so
 * several servers (or apps' rooms, or tenants) can share one database without meeting.
 */
export function names(schema = 'public'): Names {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(schema)) {
    throw new TypeError(
      `schema must be a lower-case identifier (letters, digits, _; at most 41 characters), got ${JSON.stringify(schema)}`,
    )
  }
  const table = (name: string) => `"${schema}".changecast_${name}`
  return {
    schema,
    meta: table('meta'),
    batches: table('batches'),
    entities: table('entities'),
    changes: table('changes'),
    clients: table('clients'),
    migrations: table('migrations'),
    channel: schema === 'public' ? 'changecast' : `changecast_${schema}`,
  }
}
