import type { SyncAdapter } from '../sync-port.js'
import { SyncClient } from './client.js'
import { resolveOptions, type HttpSyncOptions } from './options.js'
import { SYNC_STORES } from './store.js'

/**
 * Server sync over HTTP, following the Changecast sync protocol (docs/protocol.md): the
 * changelog's local commits are pushed to `{url}/push`, and the server's batches come back
 * from `{url}/stream` (Server-Sent Events) or `{url}/pull`, applied with
 * `source: 'remote'`. Every client ends on the server's state: its log is applied in
 * server order, with local writes the server has not answered yet kept on top.
 *
 * @example
 * import { changecast } from '@changecast/core'
 * import { httpSync } from '@changecast/core/sync'
 *
 * const feed = changecast(db, { sync: httpSync({ url: 'https://api.example.com/sync' }) })
 * await db.todos.put({ id: 1, title: 'Write docs', done: false })
 * console.log(await feed.sync!.settled()) // { rev: 1, status: 'acked' }
 *
 * @throws {InvalidOptionsError} for unknown or malformed options.
 */
export function httpSync(options: HttpSyncOptions): SyncAdapter {
  const resolved = resolveOptions(options)
  return {
    stores: SYNC_STORES,
    start: (host) => new SyncClient(host, resolved),
  }
}
