import Dexie, { type Table } from 'dexie'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  changecast,
  ChangecastError,
  ChangecastStateError,
  type ChangeBatch,
  type ChangecastOptions,
  type Feed,
  type SyncAdapter,
  type SyncHost,
  type SyncSession,
} from '@changecast/core'
import { compactLog, DEFAULT_RETENTION, LOG_TABLE, type LogRow } from '../../src/log/changelog.js'

type Item = { id: number; v: number; marker?: string }
type Db = Dexie & { items: Table<Item, number>; other: Table<Item, number> }

let counter = 0

/**
 * The changelog and delivery between contexts. Each "context" is its own Dexie
 * instance and feed on one database, so their BroadcastChannels talk to each other as
 * tabs do. Run in Node (fake-indexeddb, Node's BroadcastChannel) and in Chromium.
 */
export function crossContextSuite(): void {
  const dbs: Dexie[] = []
  const feeds: Array<Feed<never>> = []
  afterEach(async () => {
    feeds.splice(0).forEach((feed) => feed.close())
    const names = new Set(dbs.map((db) => db.name))
    dbs.splice(0).forEach((db) => db.close())
    await Promise.all([...names].map((name) => Dexie.delete(name)))
    vi.restoreAllMocks()
  })

  const newName = () => `cross-${Date.now()}-${++counter}`

  /** One context: a Dexie instance with a feed, recording what it delivers. */
  async function context(name: string, options: ChangecastOptions = {}) {
    const db = new Dexie(name) as Db
    db.version(1).stores({ items: 'id', other: 'id' })
    const feed = changecast(db, options)
    const batches: ChangeBatch[] = []
    const resyncs: unknown[] = []
    feed.onBatch((batch) => batches.push(batch))
    feed.onResync((info) => resyncs.push(info))
    dbs.push(db)
    feeds.push(feed)
    await db.open()
    return { db, feed, batches, resyncs, revs: () => batches.map((b) => b.rev) }
  }

  // Rows after key 0, the changelog's identity row.
  const logRows = (db: Dexie) => db.table<LogRow, number>(LOG_TABLE).where(':id').above(0).toArray()

  describe('changelog', () => {
    it('writes one row per committed transaction, with the rev its events carry', async () => {
      const a = await context(newName())
      await a.db.items.put({ id: 1, v: 1 })
      await a.db.transaction('rw', a.db.items, a.db.other, async () => {
        await a.db.items.put({ id: 2, v: 2 })
        await a.db.other.add({ id: 1, v: 1 })
        await a.db.items.delete(1)
      })
      const rows = await logRows(a.db)
      expect(
        rows.map((row) => [row.rev, row.tx, row.changes.map((c) => `${c.type} ${c.table} ${JSON.stringify(c.key)}`)]),
      ).toEqual([
        [1, a.batches[0]!.tx, ['create items 1']],
        [2, a.batches[1]!.tx, ['create items 2', 'create other 1', 'delete items 1']],
      ])
      expect(a.revs()).toEqual([1, 2])
      expect(a.batches[1]!.events.every((event) => event.rev === 2)).toBe(true)
      expect(a.feed.rev).toBe(2)
      expect(rows[1]!.origin).toBe(a.feed.origin)
    })

    it('writes no row for an aborted transaction, and no gap in revs after it', async () => {
      const a = await context(newName())
      await a.db
        .transaction('rw', a.db.items, async () => {
          await a.db.items.put({ id: 1, v: 1 })
          throw new Error('abort')
        })
        .catch(() => undefined)
      await a.db.items.put({ id: 2, v: 2 })
      expect((await logRows(a.db)).map((row) => row.rev)).toEqual([1])
      expect(a.revs()).toEqual([1])
    })

    it('writes no row for a transaction whose writes changed nothing', async () => {
      const a = await context(newName())
      await a.db.items.put({ id: 1, v: 1 })
      await a.db.items.put({ id: 1, v: 1 })
      await a.db.items.delete(99)
      expect(await logRows(a.db)).toHaveLength(1)
    })

    it('logs the writes Dexie commits when an operation fails half-way outside a transaction', async () => {
      const a = await context(newName())
      await a.db.items.bulkAdd(Array.from({ length: 300 }, (_, id) => ({ id, v: 0 })))
      // Dexie modifies in chunks of 200 and does not abort the rows already written.
      await a.db.items
        .toCollection()
        .modify((item) => {
          if (item.id === 250) throw new Error('boom')
          item.v = 1
        })
        .catch(() => undefined)
      await a.db.items
        .bulkAdd([
          { id: 1000, v: 0 },
          { id: 0, v: 9 },
          { id: 1001, v: 0 },
        ])
        .catch(() => undefined)
      expect(await a.db.items.filter((item) => item.v === 1).count()).toBe(200)
      const rows = await logRows(a.db)
      expect(rows.map((row) => row.changes.length)).toEqual([300, 200, 2])
      expect(a.batches.map((batch) => [batch.rev, batch.events.length])).toEqual([
        [1, 300],
        [2, 200],
        [3, 2],
      ])
    })

    it('adds at most one changelog write per transaction', async () => {
      const a = await context(newName())
      const writes: string[] = []
      const proto = globalThis.IDBObjectStore.prototype
      for (const method of ['add', 'put'] as const) {
        const original = proto[method]
        vi.spyOn(proto, method).mockImplementation(function (this: IDBObjectStore, ...args: [unknown, IDBValidKey?]) {
          if (this.name === LOG_TABLE) writes.push(method)
          return original.apply(this, args)
        })
      }
      await a.db.items.put({ id: 1, v: 1 })
      expect(writes).toHaveLength(1)
      await a.db.transaction('rw', a.db.items, a.db.other, async () => {
        for (let i = 2; i < 7; i++) await a.db.items.add({ id: i, v: i })
        await a.db.other.bulkPut([{ id: 1, v: 1 }])
        await a.db.items.update(2, { v: 20 })
      })
      expect(writes).toHaveLength(2)
      await a.db.items.bulkAdd(Array.from({ length: 900 }, (_, i) => ({ id: 100 + i, v: i })))
      await a.db.items.toCollection().modify({ marker: 'x' }) // several chunks of 200
      expect(writes).toHaveLength(4)
      expect((await logRows(a.db)).at(-1)!.changes).toHaveLength(906)
      // update(): the row is written as soon as the value is read, once.
      await a.db.items.update(1, { v: 2 })
      expect(writes).toHaveLength(5)
    })

    it('regression: logs nothing for a put or update() that fails, and the right rows for those that succeed after them', async () => {
      const db = new Dexie(newName()) as Dexie & { users: Table<{ id: number; email: string }, number> }
      db.version(1).stores({ users: 'id, &email' })
      const feed = changecast(db)
      const batches: ChangeBatch[] = []
      feed.onBatch((batch) => batches.push(batch))
      dbs.push(db)
      feeds.push(feed)
      await db.open()
      await db.users.bulkAdd([
        { id: 1, email: 'a@x' },
        { id: 2, email: 'b@x' },
      ])
      // Each row is written before its write answers (with the change it would be); the write
      // fails on the unique index, its error is answered before the row's add, Dexie still
      // calls commit(), and the row must go again — not stay, with a second, empty row added.
      await expect(db.users.put({ id: 3, email: 'a@x' })).rejects.toThrow()
      await db.users.put({ id: 3, email: 'c@x' })
      await expect(db.users.update(2, { email: 'a@x' })).rejects.toThrow()
      await db.users.update(2, { email: 'd@x' })
      const rows = await logRows(db)
      expect(rows.map((row) => row.changes.map((change) => [change.type, change.key, change.value]))).toEqual([
        [
          ['create', 1, { id: 1, email: 'a@x' }],
          ['create', 2, { id: 2, email: 'b@x' }],
        ],
        [['create', 3, { id: 3, email: 'c@x' }]],
        [['update', 2, { id: 2, email: 'd@x' }]],
      ])
      expect(batches.map((batch) => batch.events.map((event) => [event.type, event.key]))).toEqual([
        [
          ['create', 1],
          ['create', 2],
        ],
        [['create', 3]],
        [['update', 2]],
      ])
      expect(await db.users.toArray()).toEqual([
        { id: 1, email: 'a@x' },
        { id: 2, email: 'd@x' },
        { id: 3, email: 'c@x' },
      ])
    })

    it('returns the committed batches after a rev with since()', async () => {
      const a = await context(newName())
      const b = await context(a.db.name)
      await a.db.items.put({ id: 1, v: 1 })
      await b.db.items.put({ id: 2, v: 2 })
      await a.db.items.put({ id: 3, v: 3 })
      const batches = await a.feed.since(1)
      expect(batches.map((batch) => [batch.rev, batch.source, batch.events[0]!.key])).toEqual([
        [2, 'tab', 2],
        [3, 'local', 3],
      ])
      expect(await a.feed.since(3)).toEqual([])
    })

    it('rebuilds the previous value of logged updates, which store only what changed', async () => {
      const a = await context(newName())
      await a.db.items.put({ id: 1, v: 1, marker: 'm', ...({ meta: { a: 1, b: 2 } } as object) })
      await a.db.items.update(1, { v: 2, marker: undefined, 'meta.b': 3 } as never)
      const row = (await logRows(a.db))[1]!
      expect(row.changes[0]).not.toHaveProperty('previous')
      const [replayed] = await a.feed.since(1)
      expect(replayed!.events[0]).toMatchObject({
        type: 'update',
        value: { id: 1, v: 2, meta: { a: 1, b: 3 } },
        previous: { id: 1, v: 1, marker: 'm', meta: { a: 1, b: 2 } },
        changes: { v: 2, marker: undefined, 'meta.b': 3 },
      })
      expect(replayed!.events[0]!.previous).toEqual(a.batches[1]!.events[0]!.previous)
    })

    it('compacts by count and age, keeping what is still needed and the newest row', async () => {
      const a = await context(newName())
      for (let i = 1; i <= 12; i++) await a.db.items.put({ id: i, v: i })
      await compactLog(a.db, { maxEntries: 8, maxAge: DEFAULT_RETENTION.maxAge }, 3)
      expect((await logRows(a.db)).map((row) => row.rev)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
      await compactLog(a.db, { maxEntries: 8, maxAge: DEFAULT_RETENTION.maxAge })
      expect((await logRows(a.db)).map((row) => row.rev)).toEqual([5, 6, 7, 8, 9, 10, 11, 12])
      await compactLog(a.db, { maxEntries: 100, maxAge: -1 })
      expect((await logRows(a.db)).map((row) => row.rev)).toEqual([12])
    })

    it('keeps events in memory only with log: false', async () => {
      const a = await context(newName(), { log: false })
      await a.db.items.put({ id: 1, v: 1 })
      expect(a.batches).toHaveLength(1)
      expect(a.batches[0]!.rev).toBeUndefined()
      expect(a.db.tables.map((table) => table.name)).not.toContain(LOG_TABLE)
      await expect(a.feed.since(0)).rejects.toBeInstanceOf(ChangecastStateError)
      expect(a.feed.rev).toBeUndefined()
    })

    it('asks for a schema before it can add the changelog store', () => {
      const db = new Dexie(newName())
      expect(() => changecast(db)).toThrow(/declare the schema/)
      expect(() => changecast(db, { log: false })).not.toThrow()
    })
  })

  describe('between contexts', () => {
    it("delivers another context's commits with source tab, the same rev and tx, and ignores its own echoes", async () => {
      const name = newName()
      const a = await context(name)
      const b = await context(name)
      await a.db.items.put({ id: 1, v: 1 })
      await b.db.items.put({ id: 2, v: 2 })
      await a.db.items.update(1, { v: 10 })
      await vi.waitFor(() => {
        expect(b.revs()).toEqual([1, 2, 3])
        expect(a.revs()).toEqual([1, 2, 3])
      })
      expect(b.batches.map((batch) => batch.source)).toEqual(['tab', 'local', 'tab'])
      expect(a.batches.map((batch) => batch.source)).toEqual(['local', 'tab', 'local'])
      expect(b.batches[2]!.tx).toBe(a.batches[2]!.tx)
      expect(b.batches[2]!.events[0]).toMatchObject({
        type: 'update',
        key: 1,
        changes: { v: 10 },
        previous: { id: 1, v: 1 },
        source: 'tab',
        origin: a.feed.origin,
        rev: 3,
      })
    })

    it('replays a missed commit from the changelog before the one that revealed the gap', async () => {
      const name = newName()
      const a = await context(name)
      const silent = await context(name, { channel: false })
      const b = await context(name)
      await a.db.items.put({ id: 1, v: 1 })
      await silent.db.items.put({ id: 2, v: 2 }) // never announced
      await a.db.items.put({ id: 3, v: 3 })
      await vi.waitFor(() => expect(b.revs()).toEqual([1, 2, 3]))
      expect(b.batches[1]!.origin).toBe(silent.feed.origin)
      expect(b.resyncs).toEqual([])
    })

    it('catches up from the changelog after missing every message', async () => {
      const name = newName()
      const a = await context(name)
      const asleep = await context(name, { channel: false })
      for (let i = 1; i <= 5; i++) await a.db.items.put({ id: i, v: i })
      expect(asleep.revs()).toEqual([])
      await asleep.feed.catchUp()
      expect(asleep.revs()).toEqual([1, 2, 3, 4, 5])
      await asleep.feed.catchUp()
      expect(asleep.revs()).toEqual([1, 2, 3, 4, 5])
    })

    it('raises resync when the missed commits were compacted away', async () => {
      const name = newName()
      const a = await context(name)
      const asleep = await context(name, { channel: false })
      for (let i = 1; i <= 6; i++) await a.db.items.put({ id: i, v: i })
      await compactLog(a.db, { maxEntries: 2, maxAge: DEFAULT_RETENTION.maxAge })
      await asleep.feed.catchUp()
      expect(asleep.resyncs).toEqual([{ reason: 'log-compacted' }])
      expect(asleep.revs()).toEqual([5, 6])
    })

    it('since() rejects (history-unavailable) when commits after the rev were compacted away', async () => {
      const a = await context(newName())
      for (let i = 1; i <= 6; i++) await a.db.items.put({ id: i, v: i })
      await compactLog(a.db, { maxEntries: 2, maxAge: DEFAULT_RETENTION.maxAge })
      await expect(a.feed.since(1)).rejects.toMatchObject({ code: 'history-unavailable' })
      await expect(a.feed.since(1)).rejects.toBeInstanceOf(ChangecastError)
      expect((await a.feed.since(4)).map((batch) => batch.rev)).toEqual([5, 6])
    })

    it('a commit recorded without its changes (a server snapshot page) reaches listening contexts whole; one that reads it from the changelog reloads', async () => {
      // The sync port as an adapter sees it: a remote transaction whose row records only its count.
      const hosts: SyncHost[] = []
      const adapter = (): SyncAdapter => ({
        stores: {},
        start(host) {
          hosts.push(host)
          return { keepFrom: () => Promise.resolve(Infinity), close() {} } as unknown as SyncSession
        },
      })
      const name = newName()
      const a = await context(name, { sync: adapter() })
      const listening = await context(name, { sync: adapter() })
      const asleep = await context(name, { sync: adapter(), channel: false })
      await a.db.items.put({ id: 1, v: 1 })
      // Over the size from which logged batches cross as notices: this one crosses whole.
      const values = Array.from({ length: 1_200 }, (_, i) => ({ id: 100 + i, v: i }))
      await a.db.transaction('rw', a.db.items, (transaction) => {
        hosts[0]!.markRemote(transaction, 'server', 'snapshot-page-1', { unlogged: true })
        return a.db.items.bulkAdd(values)
      })
      await a.db.items.put({ id: 2, v: 2 })
      const rows = await logRows(a.db)
      expect(rows.map((row) => [row.rev, row.changes.length, row.unlogged])).toEqual([
        [1, 1, undefined],
        [2, 0, 1_200],
        [3, 1, undefined],
      ])
      for (const tab of [a, listening]) {
        await vi.waitFor(() => expect(tab.revs()).toEqual([1, 2, 3]))
        expect(tab.batches[1]!.events.map((event) => event.value)).toEqual(values)
        expect(tab.batches[1]).toMatchObject({ source: 'remote', tx: 'snapshot-page-1' })
        expect(tab.resyncs).toEqual([])
      }
      await asleep.feed.catchUp()
      expect(asleep.revs()).toEqual([1, 3])
      expect(asleep.resyncs).toEqual([{ reason: 'server-snapshot' }])
      expect(asleep.feed.rev).toBe(3)
      await expect(a.feed.since(1)).rejects.toMatchObject({ code: 'history-unavailable' })
      expect((await a.feed.since(2)).map((batch) => batch.rev)).toEqual([3])
    })

    it('sends a logged batch of more than 1,000 events as a notice: the others read it from the changelog, whole', async () => {
      const name = newName()
      const a = await context(name)
      const b = await context(name)
      const messages: Array<Record<string, unknown>> = []
      const tap = new BroadcastChannel(`changecast:${name}`)
      tap.onmessage = (message: MessageEvent) => messages.push(message.data as Record<string, unknown>)
      try {
        const values = Array.from({ length: 1_001 }, (_, i) => ({ id: i, v: i }))
        await a.db.items.bulkAdd(values)
        await a.db.items.put({ id: 5_000, v: 1 })
        await vi.waitFor(() => expect(b.revs()).toEqual([1, 2]))
        expect(b.batches[0]!.events.map((event) => event.value)).toEqual(values)
        expect(b.batches[0]).toMatchObject({ source: 'tab', tx: a.batches[0]!.tx, origin: a.feed.origin })
        await vi.waitFor(() => expect(messages).toHaveLength(2))
        expect(messages[0]).toMatchObject({ notice: { tx: a.batches[0]!.tx, rev: 1 } })
        expect(messages[0]).not.toHaveProperty('batch')
        expect(messages[1]).toHaveProperty('batch')
        expect(b.resyncs).toEqual([])
      } finally {
        tap.close()
      }
    })

    it('sends a batch of any size whole when there is no changelog to read it from', async () => {
      const name = newName()
      const a = await context(name, { log: false })
      const b = await context(name, { log: false })
      await a.db.items.bulkAdd(Array.from({ length: 1_500 }, (_, i) => ({ id: i, v: i })))
      await vi.waitFor(() => expect(b.batches).toHaveLength(1))
      expect(b.batches[0]!.events).toHaveLength(1_500)
      expect(b.resyncs).toEqual([])
    })

    it('raises resync for a missed message when there is no changelog', async () => {
      const name = newName()
      const a = await context(name, { log: false })
      const b = await context(name, { log: false })
      await a.db.items.put({ id: 1, v: 1 })
      await vi.waitFor(() => expect(b.batches).toHaveLength(1))
      // A message from a's origin with seq 3: seq 2 was lost.
      const channel = new BroadcastChannel(`changecast:${name}`)
      const batch = { ...a.batches[0]!, tx: 'x', events: a.batches[0]!.events.map((e) => ({ ...e, tx: 'x' })) }
      channel.postMessage({ v: 1, origin: a.feed.origin, seq: 3, batch })
      channel.close()
      await vi.waitFor(() => expect(b.resyncs).toEqual([{ reason: 'missed-messages', origin: a.feed.origin }]))
      expect(b.batches).toHaveLength(2)
    })

    it('ignores malformed messages with one warning each, and keeps working', async () => {
      const name = newName()
      const a = await context(name)
      const b = await context(name)
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
      const channel = new BroadcastChannel(`changecast:${name}`)
      const messages: unknown[] = [
        'hello',
        42,
        null,
        { v: 99, origin: 'x', seq: 1, batch: {} },
        {
          v: 1,
          origin: 'x',
          seq: 1,
          batch: { tx: 't', origin: 'x', source: 'local', at: 1, events: [{ type: 'boom' }] },
        },
        { v: 1, origin: 'x', seq: -1 },
      ]
      for (const message of messages) channel.postMessage(message)
      channel.close()
      // Both contexts hear every message and warn once each.
      await vi.waitFor(() => expect(warn).toHaveBeenCalledTimes(messages.length * 2))
      expect(warn.mock.calls.filter(([text]) => /unsupported version 99/.test(String(text)))).toHaveLength(2)
      await a.db.items.put({ id: 1, v: 1 })
      await vi.waitFor(() => expect(b.revs()).toEqual([1]))
    })

    it('reports crossTab: false and keeps local events without BroadcastChannel', async () => {
      const original = globalThis.BroadcastChannel
      // @ts-expect-error -- simulating a platform without BroadcastChannel
      delete globalThis.BroadcastChannel
      try {
        const a = await context(newName())
        expect(a.feed.crossTab).toBe(false)
        await a.db.items.put({ id: 1, v: 1 })
        expect(a.revs()).toEqual([1])
      } finally {
        globalThis.BroadcastChannel = original
      }
      const b = await context(newName())
      expect(b.feed.crossTab).toBe(true)
      const c = await context(newName(), { channel: false })
      expect(c.feed.crossTab).toBe(false)
    })
  })
}
