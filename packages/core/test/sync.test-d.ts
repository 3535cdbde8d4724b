import Dexie, { type EntityTable } from 'dexie'
import { describe, expectTypeOf, it } from 'vitest'
import type { SyncError } from '@changecast/core'
import {
  changecast,
  type SetAsideItem,
  type SyncAdapter,
  type SyncController,
  type SyncErrorReason,
  type SyncReceipt,
  type SyncRejection,
  type SyncStatus,
} from '@changecast/core'
import {
  httpSync,
  setAsideActions,
  stream,
  userSwitching,
  type HttpSyncOptions,
  type PushReply,
  type WireCurrent,
  type WireKey,
} from '@changecast/core/sync'

type Todo = { id: number; title: string }
const db = new Dexie('sync-types') as Dexie & { todos: EntityTable<Todo, 'id'> }

describe('sync types', () => {
  it('plugs httpSync into changecast through the port', () => {
    const adapter = httpSync({
      url: '/sync',
      pull: 'poll',
      interval: 1000,
      headers: () => Promise.resolve({ authorization: 'x' }),
    })
    expectTypeOf(adapter).toEqualTypeOf<SyncAdapter>()
    // The parts an app adds by import.
    httpSync({ url: '/sync', pull: stream, users: userSwitching, setAside: setAsideActions })
    httpSync({ url: '/sync', pull: false })
    // @ts-expect-error live updates are the stream import, not a string
    httpSync({ url: '/sync', pull: 'stream' })
    // @ts-expect-error each option takes its own part
    httpSync({ url: '/sync', users: setAsideActions })
    const feed = changecast(db, { sync: adapter })
    expectTypeOf(feed.sync).toEqualTypeOf<SyncController | undefined>()
    // @ts-expect-error the sync option takes an adapter, not options
    changecast(db, { sync: { url: '/sync' } })
    // @ts-expect-error pull is 'stream', 'poll' or false
    httpSync({ url: '/sync', pull: 'sometimes' })
    // @ts-expect-error url is required
    httpSync({ pull: false } satisfies Partial<HttpSyncOptions>)
  })

  it('types the controller: status, receipts, the inbox and errors', () => {
    const sync = {} as SyncController
    expectTypeOf(sync.status).toEqualTypeOf<SyncStatus>()
    expectTypeOf(sync.status.state).toEqualTypeOf<
      | 'idle'
      | 'pushing'
      | 'pulling'
      | 'offline'
      | 'unauthorized'
      | 'principal-changed'
      | 'signed-out'
      | 'error'
      | 'closed'
    >()
    expectTypeOf(sync.status.lastContactAt).toEqualTypeOf<number | undefined>()
    expectTypeOf(sync.settled(3)).toEqualTypeOf<Promise<SyncReceipt>>()
    expectTypeOf<SyncReceipt['status']>().toEqualTypeOf<'acked' | 'rejected' | 'dropped'>()
    expectTypeOf(sync.rejections()).toEqualTypeOf<Promise<SyncRejection[]>>()
    expectTypeOf(sync.setAside()).toEqualTypeOf<Promise<SetAsideItem[]>>()
    expectTypeOf(sync.retry).parameter(0).toEqualTypeOf<Pick<SetAsideItem, 'kind' | 'rev'>>()
    sync.onError((error) => {
      expectTypeOf(error).toEqualTypeOf<SyncError>()
      expectTypeOf(error.reason).toEqualTypeOf<SyncErrorReason>()
      expectTypeOf(error.rev).toEqualTypeOf<number | undefined>()
    })
    // @ts-expect-error flush takes an options object
    void sync.flush(3)
    expectTypeOf(sync.signOut).toEqualTypeOf<(options?: { discardPending?: boolean }) => Promise<void>>()
    expectTypeOf(sync.discardPending()).toEqualTypeOf<Promise<void>>()
    // @ts-expect-error discardPending is a boolean
    void sync.signOut({ discardPending: 'yes' })
  })

  it('types the wire format for server authors', () => {
    expectTypeOf<PushReply['acked'][number]>().toEqualTypeOf<{
      rev: number
      serverRev: number
      current?: WireCurrent[]
    }>()
    const key: WireKey = ['a', { $date: '2026-11-28T10:00:00.000Z' }, 1]
    expectTypeOf(key).toMatchTypeOf<WireKey>()
    // @ts-expect-error a date key travels as { $date }
    const bad: WireKey = { date: 'x' }
    void bad
  })
})
